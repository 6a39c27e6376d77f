/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.search;

import org.apache.lucene.index.Impacts;
import org.apache.lucene.index.ImpactsEnum;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.DocAndFloatFeatureBuffer;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.BytesRef;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * The exact top k of one query (one search thread's workspace, reused from query to query). Each segment is
 * searched on the compact in-memory copies of its postings ({@link CompactImpacts}; for small k by block-max
 * pruning, {@link BlockMaxSearch}, else {@link CompactImpactSearch}: int accumulators per window of docids) when
 * every query term has one and the int sums are exact; otherwise on Lucene's postings with MaxScore, window by
 * window, with block-max bounds, as described below.
 *
 * <p>Scores are SimpleImpactSearcher's: a term's score in a document is ImpactSimilarity's {@code freq * boost} (a
 * float product, with the frequency as a float, as Lucene's TermScorer gets it), and Lucene's disjunctions add the
 * clause scores in a double and cast the sum to float once. Every clause score is an integer-valued float, so while
 * a sum stays below 2^53 every partial sum is exact in a double and the order of the additions does not matter: a
 * query whose bound reaches 2^53 is left to Lucene ({@link #search} returns null).
 *
 * <p>Rank safety. {@link TopHits#threshold()} is the k-th largest score found so far; a document scoring below it
 * cannot enter the top k (one scoring exactly as much can, by its id: it is kept). Each segment is searched in
 * windows of {@link #WINDOW} docids. For a window, each query term gets a bound: the largest impact of the
 * term's skip block covering the window (Lucene's impacts, see {@link MaxImpacts}) times its boost, or the term's
 * largest impact in the segment. The terms are ordered by bound; the longest prefix whose bounds add up below the
 * threshold is "non-essential": a document holding only those terms cannot enter. The essential terms' postings
 * are decoded in bulk ({@code nextPostings}: int arrays) and summed term at a time into the window's accumulators
 * (a matched document's sum is at least 1, so a non-zero accumulator marks a candidate); the candidates whose sum
 * plus the non-essential bounds falls below the threshold are dropped; then the non-essential terms, largest bound
 * first, are added to the candidates left — in bulk while the window holds many candidates for the term's postings
 * ({@link #SPARSE_FACTOR}), after each term dropping the candidates that the remaining bounds cannot lift to the
 * threshold — and the remaining terms document by document ({@code advance}), each document stopping as soon as
 * its sum plus the remaining bounds falls below the threshold. A window whose bounds add up below the threshold is
 * skipped, and the next window starts at the first document of a term that is essential with the segment-wide
 * bounds, so the postings of low-bound terms are skipped over, not read. All comparisons are made on the float
 * that the double sum rounds to, as Lucene's score is (rounding is monotone, so a bound's float is at least the
 * score's float).
 *
 * <p>Measured (2 cores, heavily loaded, CPU time of one thread, 200k synthetic documents fitted to splade-tiny,
 * 100 queries of 27 terms): this path alone was about 2x (k = 10) and 4-5x (k = 1000) SimpleImpactSearcher, not
 * faster than an exhaustive term-at-a-time search: real SPLADE impacts put most blocks' maxima near the largest
 * impact, so the bounds prune little. The compact path is much faster (see benchmarks/README.md).
 *
 * <p>Memory per search thread: the window's accumulators (8 bytes x WINDOW, 64 KiB), a few arrays per query
 * term, and {@link TopHits}'s; shared by all threads: {@link MaxImpacts} and the {@link IdCache}.
 */
final class ExactImpactSearch {
  /** Docids per window (a power of two). */
  static final int WINDOW = Integer.getInteger("splade.search.window", 1 << 13);
  /**
   * Up to this k (0 by default: off), a segment on the compact postings is searched by block-max pruning first
   * ({@link BlockMaxSearch}); when its bounds prune too little it gives up, the rest of the segment is searched
   * window by window ({@link CompactImpactSearch}), as every segment above this k, and the next {@link
   * #BLOCK_MAX_RETRY} queries skip it. Off by default: on the fitted synthetic collections of 1M and 4M documents
   * it gave up on every query (k = 10) and its per-block data took about 2.75 bytes a posting more
   * (benchmarks/README.md); {@code -Dsplade.search.blockMaxK=100} turns it on.
   */
  static final int BLOCK_MAX_K = Integer.getInteger("splade.search.blockMaxK", 0);
  /** After the block-max search gives up on a query, the next queries skip it until this many have passed. */
  static final int BLOCK_MAX_RETRY = Integer.getInteger("splade.search.blockMaxRetry", 32);
  /** Below this, sums of integer-valued doubles are exact whatever the order of the additions. */
  static final double EXACT_SUM_LIMIT = 0x1p53;
  /** A non-essential term is looked up document by document (advance) when it has more than this many times as
   * many postings in the window as there are candidates left, else its postings in the window are read in bulk. */
  static final int SPARSE_FACTOR = Integer.getInteger("splade.search.sparse", 8);

  private final IndexReader reader;
  private final String field;
  private final MaxImpacts maxImpacts;
  private final TopHits top;
  private final double[] acc = new double[WINDOW];
  private final DocAndFloatFeatureBuffer buffer = new DocAndFloatFeatureBuffer();
  /** The compact postings (null: Lucene's postings only) and their search. */
  private final CompactImpacts compact;
  private final CompactImpactSearch compactSearch = new CompactImpactSearch();
  /** Block-max pruning on the compact postings, for k up to {@link #blockMaxK}. */
  final BlockMaxSearch blockMaxSearch = new BlockMaxSearch();
  private int k;
  int blockMaxK = BLOCK_MAX_K;
  /** Queries left before the block-max search is tried again, and the pause after it gives up. */
  private int blockMaxPause;
  int blockMaxRetry = BLOCK_MAX_RETRY;
  private CompactImpacts.Postings[] compactTerms = new CompactImpacts.Postings[64];
  private int[] compactBoosts = new int[64];

  // per query term of the current segment
  private ImpactsEnum[] postings = new ImpactsEnum[64];
  private float[] boosts = new float[64];
  private int[] maxFreqs = new int[64];
  private int[] docFreqs = new int[64];
  private float[] segmentBounds = new float[64];
  private float[] windowBounds = new float[64];
  private int[] bySegmentBound = new int[64];
  private int[] byWindowBound = new int[64];
  /** cumulative[j]: the window bounds of byWindowBound[0 .. j] added up. */
  private double[] cumulative = new double[64];

  ExactImpactSearch(IndexSearcher searcher, String field, MaxImpacts maxImpacts, CompactImpacts compact) {
    this.reader = searcher.getIndexReader();
    this.field = field;
    this.maxImpacts = maxImpacts;
    this.compact = compact;
    this.top = new TopHits(reader, searcher);
  }

  private void ensureTerms(int n) {
    if (postings.length < n) {
      int size = Math.max(n, 2 * postings.length);
      postings = new ImpactsEnum[size];
      boosts = new float[size];
      maxFreqs = new int[size];
      docFreqs = new int[size];
      segmentBounds = new float[size];
      windowBounds = new float[size];
      bySegmentBound = new int[size];
      byWindowBound = new int[size];
      cumulative = new double[size];
    }
  }

  /** The top k of one query ({@code term -> integer boost}), or null when a score sum could reach 2^53. */
  ScoredDocs search(Map<String, Integer> query, int k, IdCache ids) throws IOException {
    int n = query.size();
    ensureTerms(n);
    BytesRef[] termBytes = new BytesRef[n];
    float[] queryBoosts = new float[n];
    int[] intBoosts = new int[n];
    int q = 0;
    for (Map.Entry<String, Integer> e : query.entrySet()) {
      termBytes[q] = new BytesRef(e.getKey());
      intBoosts[q] = e.getValue();
      queryBoosts[q] = e.getValue().floatValue(); // BoostQuery's boost, the SimScorer's factor
      q++;
    }
    CompactImpacts.Postings[][] termSlots = null;
    if (compact != null) {
      termSlots = new CompactImpacts.Postings[n][];
      for (int t = 0; t < n; t++) {
        termSlots[t] = compact.slots(termBytes[t]);
      }
    }
    top.reset(k);
    this.k = k;
    blockMaxPause = Math.max(0, blockMaxPause - 1);
    List<LeafReaderContext> leaves = reader.leaves();
    for (int leafOrd = 0; leafOrd < leaves.size(); leafOrd++) {
      LeafReaderContext leaf = leaves.get(leafOrd);
      Terms terms = leaf.reader().terms(field);
      if (terms == null) {
        continue;
      }
      if (compact != null && searchCompact(leaf, leafOrd, terms, termBytes, termSlots, intBoosts, n)) {
        continue;
      }
      TermsEnum termsEnum = terms.iterator();
      int m = 0;
      double total = 0;
      for (int t = 0; t < n; t++) {
        if (termsEnum.seekExact(termBytes[t])) {
          maxFreqs[m] = maxImpacts.get(leafOrd, termBytes[t], termsEnum);
          postings[m] = termsEnum.impacts(PostingsEnum.FREQS);
          docFreqs[m] = termsEnum.docFreq();
          boosts[m] = queryBoosts[t];
          segmentBounds[m] = (float) maxFreqs[m] * queryBoosts[t];
          total += segmentBounds[m];
          m++;
        }
      }
      if (total >= EXACT_SUM_LIMIT) {
        Arrays.fill(postings, 0, m, null);
        return null;
      }
      searchSegment(leaf, m);
      Arrays.fill(postings, 0, m, null);
    }
    return top.result(ids);
  }

  /**
   * Searches segment {@code leaf} on the compact postings ({@link CompactImpactSearch}); false (nothing done) when
   * a term of the query in it is not copied or the int sums would not be exact.
   */
  private boolean searchCompact(LeafReaderContext leaf, int leafOrd, Terms terms, BytesRef[] termBytes,
                                CompactImpacts.Postings[][] termSlots, int[] intBoosts, int n) throws IOException {
    if (compactTerms.length < n) {
      compactTerms = new CompactImpacts.Postings[Math.max(n, 2 * compactTerms.length)];
      compactBoosts = new int[compactTerms.length];
    }
    int m = 0;
    for (int t = 0; t < n; t++) {
      CompactImpacts.Postings p = compact.lookup(termSlots[t], leafOrd, termBytes[t], terms);
      if (p == CompactImpacts.ABSENT) {
        continue;
      }
      if (p == null) {
        Arrays.fill(compactTerms, 0, m, null);
        return false;
      }
      compactTerms[m] = p;
      compactBoosts[m] = intBoosts[t];
      m++;
    }
    long[] skip = null;
    if (k <= blockMaxK && blockMaxPause == 0) {
      int outcome = blockMaxSearch.search(compactTerms, compactBoosts, m, compact.shift, compact.blockShift,
          leaf.docBase, leaf.reader().maxDoc(), top);
      if (outcome != BlockMaxSearch.GAVE_UP) {
        Arrays.fill(compactTerms, 0, m, null);
        return outcome == BlockMaxSearch.DONE;
      }
      blockMaxPause = blockMaxRetry;
      skip = blockMaxSearch.evaluated;
    }
    boolean done = compactSearch.search(compactTerms, compactBoosts, m, compact.shift, leaf.docBase,
        leaf.reader().maxDoc(), top, skip, compact.blockShift);
    Arrays.fill(compactTerms, 0, m, null);
    return done;
  }

  /** Sorts order[0, m) by bounds ascending (insertion sort: a query has tens of terms). */
  private static void sortByBound(int[] order, float[] bounds, int m) {
    for (int i = 0; i < m; i++) {
      order[i] = i;
    }
    for (int i = 1; i < m; i++) {
      int v = order[i];
      float b = bounds[v];
      int j = i - 1;
      while (j >= 0 && bounds[order[j]] > b) {
        order[j + 1] = order[j];
        j--;
      }
      order[j + 1] = v;
    }
  }

  /** How many terms of {@code order} (from the smallest bound) add up below {@code threshold}. */
  private int nonEssential(int[] order, float[] bounds, int m, float threshold) {
    double sum = 0;
    int count = 0;
    while (count < m) {
      double next = sum + bounds[order[count]];
      if ((float) next >= threshold) {
        break;
      }
      sum = next;
      cumulative[count] = sum;
      count++;
    }
    return count;
  }

  /** The bound of term {@code t} over docids [start, end): its block's largest impact times its boost. */
  private float windowBound(int t, int start, int end) throws IOException {
    ImpactsEnum pe = postings[t];
    int doc = pe.docID();
    if (doc >= end) {
      return 0f;
    }
    pe.advanceShallow(Math.max(start, doc));
    Impacts impacts = pe.getImpacts();
    for (int level = 0, levels = impacts.numLevels(); level < levels; level++) {
      if (impacts.getDocIdUpTo(level) >= end - 1) {
        int largest = MaxImpacts.largest(impacts.getImpacts(level));
        return largest >= maxFreqs[t] ? segmentBounds[t] : (float) largest * boosts[t];
      }
    }
    return segmentBounds[t];
  }

  private void searchSegment(LeafReaderContext leaf, int m) throws IOException {
    LeafReader leafReader = leaf.reader();
    int maxDoc = leafReader.maxDoc();
    int docBase = leaf.docBase;
    Bits live = leafReader.getLiveDocs();
    sortByBound(bySegmentBound, segmentBounds, m);
    int upTo = 0;
    while (upTo < maxDoc) {
      float threshold = top.threshold();
      // the window starts at the next document of a term that can lead a document into the top k on its own
      int essentialFrom = nonEssential(bySegmentBound, segmentBounds, m, threshold);
      if (essentialFrom == m) {
        return;
      }
      int start = DocIdSetIterator.NO_MORE_DOCS;
      for (int i = essentialFrom; i < m; i++) {
        ImpactsEnum pe = postings[bySegmentBound[i]];
        int doc = pe.docID();
        if (doc < upTo) {
          doc = pe.advance(upTo);
        }
        start = Math.min(start, doc);
      }
      if (start >= maxDoc) {
        return;
      }
      int end = (int) Math.min((long) start + WINDOW, maxDoc);
      int ne = 0;
      if (threshold > Float.NEGATIVE_INFINITY) {
        for (int t = 0; t < m; t++) {
          windowBounds[t] = windowBound(t, start, end);
        }
        sortByBound(byWindowBound, windowBounds, m);
        ne = nonEssential(byWindowBound, windowBounds, m, threshold);
        if (ne == m) {
          upTo = end;
          continue;
        }
      } else {
        for (int t = 0; t < m; t++) {
          byWindowBound[t] = t;
        }
      }
      // essential terms: bulk-decoded, summed term at a time
      for (int i = ne; i < m; i++) {
        addInBulk(byWindowBound[i], start, end, live, false);
      }
      int length = end - start;
      int candidates = ne == 0 ? 1 : filter(length, cumulative[ne - 1]);
      // non-essential terms, largest bound first, while some document can still enter: in bulk where the window
      // holds many candidates for the term's postings, else document by document (advance)
      int j = ne - 1;
      for (; j >= 0 && candidates > 0 && candidates * SPARSE_FACTOR >= expectedPostings(byWindowBound[j], start, end,
          maxDoc); j--) {
        addInBulk(byWindowBound[j], start, end, live, true);
        candidates = filter(length, j == 0 ? 0 : cumulative[j - 1]);
      }
      if (candidates > 0) {
        collect(start, length, docBase, j + 1);
      }
      upTo = end;
    }
  }

  /** The postings of term {@code t} expected in [start, end) (its document frequency spread evenly). */
  private int expectedPostings(int t, int start, int end, int maxDoc) {
    return (int) ((long) docFreqs[t] * (end - start) / maxDoc);
  }

  /**
   * Drops from the window's documents those whose sum plus {@code bound} (what the terms not yet added can bring)
   * is below the threshold (their accumulators become 0); returns how many are left.
   */
  private int filter(int length, double bound) {
    double limit = lowerLimit(top.threshold()) - bound;
    double[] sums = acc;
    int left = 0;
    for (int slot = 0; slot < length; slot++) {
      double sum = sums[slot];
      boolean keep = sum >= limit;
      sums[slot] = keep ? sum : 0;
      left += keep && sum > 0 ? 1 : 0;
    }
    return left;
  }

  /**
   * A double below which a sum's float is below {@code threshold}: the float just under it (rounding is monotone,
   * so a double below that float rounds to at most that float). Sums between it and the threshold are kept, and
   * the top k compares their floats exactly.
   */
  private static double lowerLimit(float threshold) {
    return threshold == Float.NEGATIVE_INFINITY ? Double.NEGATIVE_INFINITY : Math.nextDown(threshold);
  }

  /**
   * Adds term {@code t}'s scores in [start, end) to the window's sums: of every live document, or ({@code
   * candidatesOnly}) of the documents that are still candidates.
   */
  private void addInBulk(int t, int start, int end, Bits live, boolean candidatesOnly) throws IOException {
    ImpactsEnum pe = postings[t];
    if (pe.docID() < start) {
      pe.advance(start);
    }
    float boost = boosts[t];
    while (pe.docID() < end) {
      pe.nextPostings(end, buffer);
      int[] docs = buffer.docs;
      float[] freqs = buffer.features;
      if (!candidatesOnly) {
        if (live != null) {
          buffer.apply(live);
        }
        for (int j = 0, count = buffer.size; j < count; j++) {
          acc[docs[j] - start] += freqs[j] * boost; // float product (ImpactSimilarity), summed in a double
        }
        continue;
      }
      for (int j = 0, count = buffer.size; j < count; j++) {
        int slot = docs[j] - start;
        double sum = acc[slot];
        acc[slot] = sum > 0 ? sum + freqs[j] * boost : 0; // candidates only (so live documents)
      }
    }
  }

  /** Offers the window's documents to the top k, completing their sums with the non-essential terms first. */
  private void collect(int start, int length, int docBase, int ne) throws IOException {
    double[] sums = acc;
    for (int slot = 0; slot < length; slot++) {
      double sum = sums[slot];
      if (sum == 0) {
        continue;
      }
      sums[slot] = 0;
      double limit = lowerLimit(top.threshold());
      if (ne > 0 && sum + cumulative[ne - 1] < limit) {
        continue;
      }
      int doc = start + slot;
      boolean out = false;
      for (int j = ne - 1; j >= 0; j--) {
        int t = byWindowBound[j];
        ImpactsEnum pe = postings[t];
        int at = pe.docID();
        if (at < doc) {
          at = pe.advance(doc);
        }
        if (at == doc) {
          sum += (float) pe.freq() * boosts[t];
        }
        if (j > 0 && sum + cumulative[j - 1] < limit) {
          out = true;
          break;
        }
      }
      if (!out) {
        top.offer(docBase + doc, (float) sum);
      }
    }
  }
}
