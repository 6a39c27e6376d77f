/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

/**
 * The one quantisation rule of splade-pyserini, shared by indexing and searching.
 *
 * <p>{@code q = round-half-away-from-zero(w * scale)}, computed in double precision as
 * {@code sign(x) * floor(|x| + 0.5)} with {@code x = w * scale} (the same formula as the Python side,
 * {@code splade_pyserini.encoder.quantize}). Terms whose {@code q} is not positive are dropped: Lucene term
 * frequencies and query boosts cannot be zero or negative.
 */
public final class Quantizer {
  /** System property with the scale of float weights in a vector collection (e.g. {@code -Dsplade.scale=51.2}). */
  public static final String SCALE_PROPERTY = "splade.scale";

  /** Largest impact a term may get (a Lucene term frequency is an int, and a document's length must fit too). */
  public static final long MAX_IMPACT = Integer.MAX_VALUE;

  private Quantizer() {
  }

  /** Round half away from zero of {@code w * scale}, as a long (no dropping, no range checks). */
  public static long quantize(double w, double scale) {
    double x = w * scale;
    double r = Math.floor(Math.abs(x) + 0.5);
    return (long) (x < 0 ? -r : r);
  }

  /**
   * The scale declared with {@code -Dsplade.scale}, or {@code NaN} when there is none (integer weights are then
   * taken as they are, and a fractional weight is an error).
   */
  public static double scaleFromSystemProperty() {
    String value = System.getProperty(SCALE_PROPERTY);
    if (value == null || value.isBlank()) {
      return Double.NaN;
    }
    double scale;
    try {
      scale = Double.parseDouble(value.trim());
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("-D" + SCALE_PROPERTY + "=" + value + " is not a number");
    }
    if (!(scale > 0) || Double.isInfinite(scale)) {
      throw new IllegalArgumentException("-D" + SCALE_PROPERTY + "=" + value + " must be a positive number");
    }
    return scale;
  }
}
