/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.analysis.tokenattributes.TermFrequencyAttribute;

/**
 * A pre-analysed token stream that emits each term once, with its impact as the term frequency
 * ({@link TermFrequencyAttribute}), instead of a pseudo-document that repeats the term {@code impact} times.
 *
 * <p>The field it feeds must index {@code DOCS_AND_FREQS} (no positions, no term-vector positions): Lucene refuses
 * positions together with custom term frequencies. The field length Lucene records (and thus the norm) is the sum of
 * the frequencies, exactly as for the repeated pseudo-document.
 */
public final class WeightedTermsTokenStream extends TokenStream {
  private final CharTermAttribute termAtt = addAttribute(CharTermAttribute.class);
  private final TermFrequencyAttribute freqAtt = addAttribute(TermFrequencyAttribute.class);
  private final String[] terms;
  private final int[] freqs;
  private final int size;
  private int next;

  /** The first {@code size} terms with their frequencies (each >= 1). */
  public WeightedTermsTokenStream(String[] terms, int[] freqs, int size) {
    if (size > terms.length || size > freqs.length) {
      throw new IllegalArgumentException("size " + size + " exceeds the arrays");
    }
    this.terms = terms;
    this.freqs = freqs;
    this.size = size;
  }

  @Override
  public boolean incrementToken() {
    if (next >= size) {
      return false;
    }
    clearAttributes();
    termAtt.setEmpty().append(terms[next]);
    freqAtt.setTermFrequency(freqs[next]);
    next++;
    return true;
  }

  @Override
  public void reset() throws java.io.IOException {
    super.reset();
    next = 0;
  }
}
