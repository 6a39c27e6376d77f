/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.search;

import java.util.Arrays;

/**
 * The exact top k of one query in one segment, on {@link CompactImpacts}' postings (one search thread's workspace,
 * reused): window by window, integer accumulators, windows skipped by exact per-window bounds.
 *
 * <p>Scores. A term's score in a document is ImpactSimilarity's float product {@code freq * boost}; Lucene adds the
 * clause scores in a double and casts the sum to float. When every product is at most 2^24 (exact in a float) and
 * the segment's bounds add up below 2^31, every product and every partial sum is an exact int, so the int sum cast
 * to float is Lucene's score; otherwise {@link #search} declines (returns false) and the caller uses Lucene's
 * postings. A document is compared with the threshold through {@link #intLimit}: the smallest int whose float is at
 * least the threshold (float rounding is monotone).
 *
 * <p>Per window of {@link CompactImpacts#window} docids: a window whose terms' bounds (largest impact in the window
 * times the boost) add up below the threshold is skipped. Otherwise every term's slice is added into the window's
 * int accumulators (a tight scatter-add loop over 3-byte postings; the accumulators, 128 KiB, stay in the L2
 * cache), then the accumulators are read chunk by chunk: a vectorised test skips a chunk of {@link #CHUNK}
 * documents in which none reaches the threshold; in the others, each run of {@link #SUB} is tested again, and the
 * documents at the threshold are listed without a branch and offered to the top k (in docid order; the threshold
 * is re-read after each offer).
 *
 * <p>MaxScore (adding the non-essential terms only to the documents that the essential ones bring near the
 * threshold) was measured here and dropped: on SPLADE-like impacts the non-essential bounds add up to nearly the
 * threshold, so after the essential terms more than 99% of the runs of 64 documents still held a possible entrant
 * (1M fitted synthetic documents, k = 10), and listing candidates cost more than adding the remaining postings. A
 * stricter split (non-essential bounds adding up to at most a quarter or half of the threshold, their postings looked
 * up by a galloping search for the documents that the others bring within reach) was slower as well: with the
 * threshold still low in the first windows, too many documents are within reach (benchmarks/README.md).
 *
 * <p>Memory per search thread: the accumulators (4 bytes a docid of the window) and two arrays per query term.
 */
final class CompactImpactSearch {
  /** Products of an impact and a boost above this are not exact floats. */
  static final long EXACT_PRODUCT_LIMIT = 1L << 24;

  /** Accumulators per step of {@link #offerAll} (a step without a document at the threshold is skipped). */
  static final int CHUNK = 256;
  /** Within a chunk that reaches the threshold, accumulators tested again per {@code SUB} before listing. */
  static final int SUB = 64;

  private int[] acc = new int[0];
  /** The slots of one chunk that reach the limit. */
  private final int[] hits = new int[CHUNK];

  private CompactImpacts.Postings[] postings = new CompactImpacts.Postings[64];
  private int[] boosts = new int[64];

  private float limitFor = Float.NaN;
  private int limit;

  private void ensureTerms(int n) {
    if (postings.length < n) {
      int size = Math.max(n, 2 * postings.length);
      postings = new CompactImpacts.Postings[size];
      boosts = new int[size];
    }
  }

  /**
   * The smallest int whose float is at least {@code threshold} (1 before the top k is full: every matched document
   * scores at least 1).
   */
  static int intLimit(float threshold) {
    if (!(threshold > 1f)) {
      return 1;
    }
    if (threshold >= 0x1p31f) {
      return Integer.MAX_VALUE;
    }
    int x = (int) threshold; // scores are integer-valued floats, and so is the threshold
    while (x > 1 && (float) (x - 1) >= threshold) {
      x--;
    }
    return x;
  }

  private int limit(TopHits top) {
    float threshold = top.threshold();
    if (threshold != limitFor) {
      limitFor = threshold;
      limit = intLimit(threshold);
    }
    return limit;
  }

  /** Whether every product of an impact and a boost is an exact float and the bounds add up below 2^31. */
  static boolean exactInts(CompactImpacts.Postings[] terms, int[] termBoosts, int m) {
    long total = 0;
    for (int t = 0; t < m; t++) {
      long product = (long) terms[t].max * termBoosts[t];
      if (product > EXACT_PRODUCT_LIMIT) {
        return false;
      }
      total += product;
    }
    return total < Integer.MAX_VALUE;
  }

  /**
   * Searches one segment ({@code m} terms: their postings and integer boosts) into {@code top}; false (nothing
   * done) when the int sums would not be exact. {@code done}: null, or a bit per block of 2^{@code blockShift}
   * docids whose documents were offered already (by {@link BlockMaxSearch} before it gave up), not offered again.
   */
  boolean search(CompactImpacts.Postings[] terms, int[] termBoosts, int m, int shift, int docBase, int maxDoc,
                 TopHits top, long[] done, int blockShift) {
    if (!exactInts(terms, termBoosts, m)) {
      return false;
    }
    ensureTerms(m);
    System.arraycopy(terms, 0, postings, 0, m);
    System.arraycopy(termBoosts, 0, boosts, 0, m);
    limitFor = Float.NaN;
    if (acc.length != 1 << shift) {
      acc = new int[1 << shift];
    }
    int windows = (int) (((long) maxDoc + acc.length - 1) >>> shift);
    for (int w = 0; w < windows; w++) {
      searchWindow(w, m, docBase + (w << shift), top, done, shift, blockShift);
    }
    Arrays.fill(postings, 0, m, null);
    return true;
  }

  private void searchWindow(int w, int m, int base, TopHits top, long[] done, int shift, int blockShift) {
    long bound = 0;
    for (int t = 0; t < m; t++) {
      bound += postings[t].windowMax[w] * boosts[t];
    }
    if (bound < limit(top)) {
      return; // no document of the window can reach the threshold
    }
    int[] acc = this.acc;
    int length = 0;
    for (int t = 0; t < m; t++) {
      CompactImpacts.Postings p = postings[t];
      int from = p.starts[w];
      int to = p.starts[w + 1];
      if (to > from) {
        scatter(p, from, to, boosts[t], acc);
        length = Math.max(length, p.docs[to - 1] + 1);
      }
    }
    if (done != null) {
      int first = w << (shift - blockShift);
      // the segment's blocks only: the last window may extend past the segment's end
      for (int b = first, end = Math.min(first + (1 << (shift - blockShift)), done.length << 6); b < end; b++) {
        if ((done[b >>> 6] & (1L << b)) != 0) {
          Arrays.fill(acc, (b - first) << blockShift, (b - first + 1) << blockShift, 0);
        }
      }
    }
    offerAll(length, base, top);
  }

  /** Adds a slice's scores to every document's accumulator. */
  private static void scatter(CompactImpacts.Postings p, int from, int to, int boost, int[] acc) {
    char[] docs = p.docs;
    byte[] narrow = p.impacts8;
    if (narrow != null) {
      for (int i = from; i < to; i++) {
        acc[docs[i]] += (narrow[i] & 0xFF) * boost;
      }
    } else {
      char[] wide = p.impacts16;
      for (int i = from; i < to; i++) {
        acc[docs[i]] += wide[i] * boost;
      }
    }
  }

  /**
   * Offers the documents of acc[0, length) that reach the threshold, in docid order, and zeroes acc: chunk by
   * chunk, a chunk whose largest sum is below the threshold is only zeroed.
   */
  private void offerAll(int length, int base, TopHits top) {
    int[] acc = this.acc;
    int limit = limit(top);
    int step = Math.min(CHUNK, acc.length); // windows are powers of two: a multiple of step
    for (int chunk = 0; chunk < length; chunk += step) {
      int end = chunk + step; // within the window; accumulators past length are 0
      if (reaches(acc, chunk, end, limit)) {
        // the slots at the limit, listed without a branch, then offered (the limit rises as they are)
        int[] list = hits;
        int n = 0;
        for (int sub = chunk; sub < end; sub += SUB) {
          if (!reaches(acc, sub, sub + SUB, limit)) {
            continue;
          }
          for (int slot = sub; slot < sub + SUB; slot++) {
            list[n] = slot;
            n += acc[slot] >= limit ? 1 : 0;
          }
        }
        for (int i = 0; i < n; i++) {
          int slot = list[i];
          int score = acc[slot];
          if (score >= limit) {
            top.offer(base + slot, (float) score);
            limit = limit(top);
          }
        }
      }
      Arrays.fill(acc, chunk, end, 0);
    }
  }

  /**
   * Whether some accumulator of [from, to) reaches {@code limit} (at least 1): an OR of {@code limit - 1 - acc},
   * negative exactly when one does (sums and limit are non-negative ints), a loop the JIT vectorises.
   */
  private static boolean reaches(int[] acc, int from, int to, int limit) {
    int below = limit - 1;
    int any = 0;
    for (int i = from; i < to; i++) {
      any |= below - acc[i];
    }
    return any < 0;
  }
}
