/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.search;

import java.util.Arrays;

/**
 * The exact top k of one query in one segment by block-max pruning (Mallia, Suel, Tonellotto, "Faster Learned
 * Sparse Retrieval with Block-Max Pruning", SIGIR 2024), on {@link CompactImpacts}' postings: one search thread's
 * workspace, reused. For small k, where the k-th score is high and few blocks of documents can reach it.
 *
 * <p>The segment's docids are cut into blocks of {@link CompactImpacts#block} (64 by default). A block's bound is
 * the sum over the query terms of the term's largest impact in the block times its boost (computed term at a time
 * over small arrays, one int per block). The blocks whose bound reaches the current threshold are put in
 * {@link #BUCKETS} buckets by bound (a counting sort: one pass to count, one to place) and evaluated from the
 * highest bucket down: a block is evaluated when its bound still reaches the threshold (which rises as hits are
 * found), and the search stops at the first bucket whose largest bound is below it. Evaluating a block adds each
 * query term's postings in it (a slice of the window's postings: {@code blockStarts}) into one int accumulator per
 * docid of the block, then offers the documents that reach the threshold. Rank safety: a bound is at least every
 * score in its block, and a block is skipped only when its bound is below the threshold (the smallest int whose
 * float reaches it, {@link CompactImpactSearch#intLimit}): its documents cannot enter the top k, even by a tie.
 * Documents are offered out of docid order; {@link TopHits} restores it among its candidates for the tie rule.
 * Scores: the int sums of {@link CompactImpactSearch}, under the same condition ({@link
 * CompactImpactSearch#exactInts}).
 *
 * <p>Without docids ordered to put similar documents together (as the paper's), bounds over 64 documents can
 * be far above every score: on 1M fitted synthetic documents (independent terms), k = 10, 81% of the blocks had
 * to be evaluated, at about 2 us a block (30 terms' slices, out of docid order), 18x the window search's time. So
 * the search gives up past 1 / {@link #GIVE_UP} of the blocks, and the caller searches the rest by windows,
 * skipping the blocks already evaluated ({@link #evaluated}); {@link ExactImpactSearch} then leaves this search
 * aside for a while (it is tried again every {@link ExactImpactSearch#BLOCK_MAX_RETRY} queries).
 *
 * <p>Memory per search thread: an int bound, an int slot and a bit per block of the segment (about 8 bytes per
 * 64 documents), the block's accumulators, and the buckets.
 */
final class BlockMaxSearch {
  /** Buckets of the counting sort by bound. */
  static final int BUCKETS = 2048;
  /** The search gives up once it has evaluated more than this fraction of a segment's blocks (1 / GIVE_UP). */
  static final int GIVE_UP = Integer.getInteger("splade.search.blockMaxGiveUp", 32);

  /** Outcomes of {@link #search}. */
  static final int NOT_EXACT = 0;
  static final int DONE = 1;
  static final int GAVE_UP = 2;

  /** This search's give-up fraction (1 / giveUp of the blocks; 1: never gives up). */
  int giveUp = GIVE_UP;

  /** A bit per block of the segment: evaluated (valid after {@link #GAVE_UP}). */
  long[] evaluated = new long[0];

  private int[] bounds = new int[0];
  private int[] order = new int[0];
  private final int[] bucketCount = new int[BUCKETS];
  private final int[] bucketEnd = new int[BUCKETS];
  private final int[] bucketMax = new int[BUCKETS];
  private int[] acc = new int[0];

  private CompactImpacts.Postings[] postings = new CompactImpacts.Postings[64];
  private int[] boosts = new int[64];

  private float limitFor = Float.NaN;
  private int limit;

  /** Blocks of the segments searched, and blocks evaluated (for benchmarks). */
  long blocksSeen;
  long blocksEvaluated;
  /** Segments searched, and those on which the search gave up (for benchmarks). */
  long segments;
  long gaveUp;

  private int limit(TopHits top) {
    float threshold = top.threshold();
    if (threshold != limitFor) {
      limitFor = threshold;
      limit = CompactImpactSearch.intLimit(threshold);
    }
    return limit;
  }

  /**
   * Searches one segment ({@code m} terms: their postings and integer boosts; windows of 2^{@code shift} and
   * blocks of 2^{@code blockShift} docids) into {@code top}: {@link #DONE}; {@link #NOT_EXACT} (nothing done) when
   * the int sums would not be exact; {@link #GAVE_UP} when the bounds pruned too little (more than 1 / {@link
   * #GIVE_UP} of the blocks to evaluate): the blocks evaluated so far are marked in {@link #evaluated}, the others
   * are left to the caller.
   */
  int search(CompactImpacts.Postings[] terms, int[] termBoosts, int m, int shift, int blockShift, int docBase,
             int maxDoc, TopHits top) {
    if (!CompactImpactSearch.exactInts(terms, termBoosts, m)) {
      return NOT_EXACT;
    }
    if (m == 0) {
      return DONE;
    }
    if (postings.length < m) {
      postings = new CompactImpacts.Postings[Math.max(m, 2 * postings.length)];
      boosts = new int[postings.length];
    }
    System.arraycopy(terms, 0, postings, 0, m);
    System.arraycopy(termBoosts, 0, boosts, 0, m);
    if (acc.length != 1 << blockShift) {
      acc = new int[1 << blockShift];
    }
    limitFor = Float.NaN;
    int blocks = (int) (((long) maxDoc + (1 << blockShift) - 1) >>> blockShift);
    if (bounds.length < blocks) {
      bounds = new int[blocks];
      order = new int[blocks];
      evaluated = new long[(blocks + 63) >>> 6];
    }
    Arrays.fill(evaluated, 0, (blocks + 63) >>> 6, 0L);
    int budget = giveUp <= 1 ? blocks : Math.max(1, blocks / giveUp);
    int outcome = DONE;
    int[] ub = bounds;
    for (int t = 0; t < m; t++) {
      addBounds(postings[t], boosts[t], ub, blocks, t == 0);
    }
    int queued = bucket(ub, blocks, limit(top));
    blocksSeen += blocks;
    segments++;
    int next = 0;
    for (int j = BUCKETS - 1; j >= 0 && next < queued; j--) {
      int end = bucketEnd[j];
      if (next == end) {
        continue;
      }
      if (bucketMax[j] < limit(top)) {
        break; // every block left has a smaller bound
      }
      for (; next < end && budget > 0; next++) {
        int b = order[next];
        if (ub[b] >= limit(top)) {
          evaluate(b, m, shift, blockShift, docBase, top);
          evaluated[b >>> 6] |= 1L << b;
          budget--;
        }
      }
      if (budget == 0 && next < queued) {
        outcome = GAVE_UP;
        gaveUp++;
        break;
      }
      next = end;
    }
    Arrays.fill(postings, 0, m, null);
    return outcome;
  }

  /** ub[0, blocks) = (or +=) the term's largest impact in each block times its boost. */
  private static void addBounds(CompactImpacts.Postings p, int boost, int[] ub, int blocks, boolean first) {
    byte[] narrow = p.blockMax8;
    if (narrow != null) {
      if (first) {
        for (int b = 0; b < blocks; b++) {
          ub[b] = (narrow[b] & 0xFF) * boost;
        }
      } else {
        for (int b = 0; b < blocks; b++) {
          ub[b] += (narrow[b] & 0xFF) * boost;
        }
      }
    } else {
      char[] wide = p.blockMax16;
      for (int b = 0; b < blocks; b++) {
        ub[b] = (first ? 0 : ub[b]) + wide[b] * boost;
      }
    }
  }

  /**
   * Puts the blocks whose bound reaches {@code limit} in order[0, n) by bucket, highest bucket first (within a
   * bucket, in docid order); bucketEnd[j] is where bucket j ends, bucketMax[j] its largest bound. Returns n.
   */
  private int bucket(int[] ub, int blocks, int limit) {
    int top = 0;
    for (int b = 0; b < blocks; b++) {
      top = Math.max(top, ub[b]);
    }
    if (top < limit) {
      Arrays.fill(bucketEnd, 0);
      return 0;
    }
    long scale = ((long) (BUCKETS - 1) << 32) / top; // bucket(u) = u * (BUCKETS - 1) / top, rounded down or less
    Arrays.fill(bucketCount, 0);
    Arrays.fill(bucketMax, 0);
    for (int b = 0; b < blocks; b++) {
      int u = ub[b];
      if (u >= limit) {
        int j = (int) ((u * scale) >>> 32);
        bucketCount[j]++;
        bucketMax[j] = Math.max(bucketMax[j], u);
      }
    }
    int at = 0;
    for (int j = BUCKETS - 1; j >= 0; j--) {
      int count = bucketCount[j];
      bucketCount[j] = at; // now where the bucket's next block goes
      at += count;
      bucketEnd[j] = at;
    }
    for (int b = 0; b < blocks; b++) {
      int u = ub[b];
      if (u >= limit) {
        order[bucketCount[(int) ((u * scale) >>> 32)]++] = b;
      }
    }
    return at;
  }

  /** Adds the query terms' postings of block b into the accumulators and offers the documents at the threshold. */
  private void evaluate(int b, int m, int shift, int blockShift, int docBase, TopHits top) {
    blocksEvaluated++;
    int w = b >>> (shift - blockShift);
    int perWindow = 1 << (shift - blockShift);
    boolean lastOfWindow = (b & (perWindow - 1)) == perWindow - 1;
    int mask = (1 << blockShift) - 1;
    int[] acc = this.acc;
    for (int t = 0; t < m; t++) {
      CompactImpacts.Postings p = postings[t];
      int base = p.starts[w];
      int from = base + p.blockStarts[b];
      int to = lastOfWindow ? p.starts[w + 1] : base + p.blockStarts[b + 1];
      if (to > from) {
        scatter(p, from, to, boosts[t], mask, acc);
      }
    }
    int limit = limit(top);
    int first = docBase + (b << blockShift);
    for (int slot = 0; slot <= mask; slot++) {
      int score = acc[slot];
      if (score >= limit) {
        top.offer(first + slot, (float) score);
        limit = limit(top);
      }
      acc[slot] = 0;
    }
  }

  private static void scatter(CompactImpacts.Postings p, int from, int to, int boost, int mask, int[] acc) {
    char[] docs = p.docs;
    byte[] narrow = p.impacts8;
    if (narrow != null) {
      for (int i = from; i < to; i++) {
        acc[docs[i] & mask] += (narrow[i] & 0xFF) * boost;
      }
    } else {
      char[] wide = p.impacts16;
      for (int i = from; i < to; i++) {
        acc[docs[i] & mask] += wide[i] * boost;
      }
    }
  }
}
