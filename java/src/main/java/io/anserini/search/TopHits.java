/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.search;

import org.apache.lucene.document.Document;
import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.util.BytesRef;

import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Top-k selection of one query with SimpleImpactSearcher's order: score descending, then the "id" doc value
 * ascending (BytesRef order: unsigned bytes; a document without a value first, as SortField.Type.STRING_VAL's
 * comparator puts missing values), then Lucene docid ascending (the hit queue's last tie-break).
 *
 * <p>Documents are offered in docid order, or in any order (block-max search): the candidates are then put back in
 * docid order before the final sort, which needs it among equal scores (same score, same id). {@link #threshold()} is
 * the k-th largest score among those offered up to the last selection (negative infinity before k offers), never above
 * the k-th largest offered so far: a document scoring below it cannot be in the top k, and the searcher may skip any
 * document whose score bound is below it. Documents scoring at least the threshold are kept as candidates (those equal
 * to it too: the id decides among equal scores); the threshold is raised by a selection (quickselect) over the
 * candidates whenever their number doubles (or grows by max(k, 32)), dropping those below it: a constant cost per
 * offer, where a heap costs log k. At the end the candidates still at or above the final threshold are sorted by score
 * (stable radix sort on the float bits, so docid order stays among equal scores), and only the runs of equal scores
 * that reach into the top k are sorted by id. Scores are non-negative.
 *
 * <p>Memory (per search thread, reused from query to query): the candidates (8 bytes each, 4 more for the
 * selection; at most about twice max(k, 32) plus the ties at the threshold) and, at the end, 16 bytes per
 * candidate for the sort.
 */
final class TopHits {
  private static final Set<String> ID_ONLY = Set.of("id");
  private static final int SORT_RADIX_BITS = 8;

  private final IndexReader reader;
  private final IndexSearcher searcher;

  private int k;
  private float threshold;
  /** Scratch of the threshold's selection. */
  private float[] selectBuffer = new float[1024];

  /** Candidates, in docid order. */
  private float[] candScores = new float[1024];
  private int[] candDocs = new int[1024];
  private int size;
  private int compactAt;
  /** The last docid offered, and whether a docid came after a larger one. */
  private int lastDoc;
  private boolean unordered;

  /** Final order (candidate indexes), and the ids of the candidates: bytes ids[idStart[i] ..] or length -1. */
  private int[] perm = new int[1024];
  private int[] mergeTmp = new int[1024];
  private int[] scratch = new int[1024];
  private final int[] sortHistogram = new int[1 << SORT_RADIX_BITS];
  private byte[] ids;
  /** This thread's id bytes (when there is no cache; else {@code ids} is the cache's pool). */
  private byte[] ownIds = new byte[1 << 14];
  private int[] idStart = new int[1024];
  private int[] idLength = new int[1024];

  TopHits(IndexReader reader, IndexSearcher searcher) {
    this.reader = reader;
    this.searcher = searcher;
  }

  /** Starts a query of {@code k} hits. */
  void reset(int k) {
    this.k = k;
    size = 0;
    lastDoc = -1;
    unordered = false;
    threshold = Float.NEGATIVE_INFINITY;
    compactAt = (int) Math.min(Math.max(k, 32L), Integer.MAX_VALUE - 1024);
  }

  /** The k-th largest score offered so far (negative infinity before k offers): nothing below it can enter. */
  float threshold() {
    return threshold;
  }

  /** A document (global docid, not offered before) and its score. */
  void offer(int doc, float score) {
    if (score < threshold) {
      return;
    }
    unordered |= doc < lastDoc;
    lastDoc = doc;
    if (size == candScores.length) {
      int grown = (int) Math.min(2L * candScores.length, Integer.MAX_VALUE - 8);
      candScores = Arrays.copyOf(candScores, grown);
      candDocs = Arrays.copyOf(candDocs, grown);
    }
    candScores[size] = score;
    candDocs[size] = doc;
    size++;
    if (size >= compactAt) {
      raiseThreshold();
    }
  }

  /**
   * Sets the threshold to the k-th largest score of the candidates (every score offered at or above the old
   * threshold is among them) and keeps those at or above it; the next time comes after as many offers again as
   * are kept (at least max(k, 32)), so the work per offer stays constant, ties or not.
   */
  private void raiseThreshold() {
    if (size >= k) {
      if (selectBuffer.length < size) {
        selectBuffer = new float[candScores.length];
      }
      System.arraycopy(candScores, 0, selectBuffer, 0, size);
      threshold = kthLargest(selectBuffer, size, k);
      compact();
    }
    compactAt = (int) Math.min(size + Math.max(size, Math.max(k, 32L)), Integer.MAX_VALUE - 1024);
  }

  /** The k-th largest of a[0, n) (quickselect; reorders a). */
  static float kthLargest(float[] a, int n, int k) {
    int lo = 0;
    int hi = n - 1;
    int target = k - 1; // index in descending order
    while (lo < hi) {
      float pivot = a[(lo + hi) >>> 1];
      int i = lo;
      int j = hi;
      while (i <= j) {
        while (a[i] > pivot) {
          i++;
        }
        while (a[j] < pivot) {
          j--;
        }
        if (i <= j) {
          float t = a[i];
          a[i] = a[j];
          a[j] = t;
          i++;
          j--;
        }
      }
      if (target <= j) {
        hi = j;
      } else if (target >= i) {
        lo = i;
      } else {
        return a[target];
      }
    }
    return a[target];
  }

  /** Keeps the candidates that score at least the threshold, in their order. */
  private void compact() {
    float min = threshold;
    float[] scores = candScores;
    int[] docs = candDocs;
    int kept = 0;
    for (int i = 0, n = size; i < n; i++) {
      float score = scores[i];
      scores[kept] = score;
      docs[kept] = docs[i];
      kept += score >= min ? 1 : 0;
    }
    size = kept;
  }

  /** The top k, ids read from {@code cache} (or from the doc values / stored fields when it is null). */
  ScoredDocs result(IdCache cache) throws IOException {
    raiseThreshold(); // every candidate now scores at least the final k-th score
    int n = size;
    if (unordered) {
      sortByDoc(n);
    }
    if (perm.length < n) {
      perm = new int[candScores.length];
      mergeTmp = new int[candScores.length];
      idStart = new int[candScores.length];
      idLength = new int[candScores.length];
    }
    if (scratch.length < n) {
      scratch = new int[candScores.length];
    }
    sortByScore(n);
    // runs of equal scores that reach into the top k: by id (stable, so docid order stays among equal ids)
    boolean idsRead = false;
    for (int from = 0; from < n && from < k; ) {
      int to = from + 1;
      float score = candScores[perm[from]];
      while (to < n && candScores[perm[to]] == score) {
        to++;
      }
      if (to - from > 1) {
        if (!idsRead) {
          readIds(n, cache);
          idsRead = true;
        }
        sortById(from, to);
      }
      from = to;
    }
    int out = Math.min(k, n);
    ScoredDocs docs = new ScoredDocs();
    docs.lucene_docids = new int[out];
    docs.scores = new float[out];
    docs.docids = new String[out];
    docs.lucene_documents = new Document[out];
    StoredFields stored = null;
    if (!idsRead && cache == null) {
      readIds(n, null);
    }
    for (int r = 0; r < out; r++) {
      int p = perm[r];
      int doc = candDocs[p];
      docs.lucene_docids[r] = doc;
      docs.scores[r] = candScores[p];
      String id = null;
      if (cache != null) {
        id = cache.id(doc);
      } else if (idLength[p] >= 0) {
        id = new BytesRef(ids, idStart[p], idLength[p]).utf8ToString();
      }
      if (id == null) {
        if (stored == null) {
          stored = searcher.storedFields();
        }
        id = stored.document(doc, ID_ONLY).get("id");
      }
      docs.docids[r] = id;
    }
    size = 0;
    return docs;
  }

  /** The candidates [0, n) in docid order. */
  private void sortByDoc(int n) {
    long[] keys = new long[n];
    for (int i = 0; i < n; i++) {
      keys[i] = ((long) candDocs[i] << 32) | i;
    }
    Arrays.sort(keys);
    float[] scores = Arrays.copyOf(candScores, n);
    for (int i = 0; i < n; i++) {
      int from = (int) keys[i];
      candDocs[i] = (int) (keys[i] >>> 32);
      candScores[i] = scores[from];
    }
  }

  /** perm[0, n): the candidates by score descending, docid ascending (LSD radix sort on the float bits). */
  private void sortByScore(int n) {
    int[] bits = scratch;
    int[] src = perm;
    int[] dst = mergeTmp;
    for (int i = 0; i < n; i++) {
      bits[i] = Float.floatToRawIntBits(candScores[i]); // non-negative floats order as their bits
      src[i] = i;
    }
    int mask = (1 << SORT_RADIX_BITS) - 1;
    int[] hist = sortHistogram;
    for (int shift = 0; shift < 31 && n > 1; shift += SORT_RADIX_BITS) {
      Arrays.fill(hist, 0);
      for (int i = 0; i < n; i++) {
        hist[(bits[i] >>> shift) & mask]++;
      }
      if (hist[(bits[0] >>> shift) & mask] == n) {
        continue; // the same digit everywhere
      }
      int pos = 0;
      for (int b = mask; b >= 0; b--) { // descending
        int c = hist[b];
        hist[b] = pos;
        pos += c;
      }
      for (int i = 0; i < n; i++) {
        int v = src[i];
        dst[hist[(bits[v] >>> shift) & mask]++] = v;
      }
      int[] t = src;
      src = dst;
      dst = t;
    }
    if (src != perm) {
      System.arraycopy(src, 0, perm, 0, n);
    }
  }

  /** The id bytes of candidates [0, n): from the cache, else from the doc values (in docid order). */
  private void readIds(int n, IdCache cache) throws IOException {
    if (cache != null) {
      ids = cache.pool;
      for (int i = 0; i < n; i++) {
        int doc = candDocs[i];
        if (cache.has(doc)) {
          idStart[i] = cache.start[doc];
          idLength[i] = cache.start[doc + 1] - cache.start[doc];
        } else {
          idStart[i] = 0;
          idLength[i] = -1;
        }
      }
      return;
    }
    ids = ownIds;
    List<LeafReaderContext> leaves = reader.leaves();
    int leafIndex = -1;
    LeafReaderContext leaf = null;
    BinaryDocValues values = null;
    int used = 0;
    for (int i = 0; i < n; i++) {
      int doc = candDocs[i];
      while (leaf == null || doc >= leaf.docBase + leaf.reader().maxDoc()) {
        leaf = leaves.get(++leafIndex);
        values = leaf.reader().getBinaryDocValues("id");
      }
      if (values != null && values.advanceExact(doc - leaf.docBase)) {
        BytesRef id = values.binaryValue();
        if (used + id.length > ids.length) {
          ids = ownIds = Arrays.copyOf(ids, Math.max(2 * ids.length, used + id.length));
        }
        System.arraycopy(id.bytes, id.offset, ids, used, id.length);
        idStart[i] = used;
        idLength[i] = id.length;
        used += id.length;
      } else {
        idStart[i] = 0;
        idLength[i] = -1;
      }
    }
  }

  /** As SortField.Type.STRING_VAL's comparator: missing first, then BytesRef.compareTo (unsigned bytes). */
  private int compareIds(int a, int b) {
    int la = idLength[a];
    int lb = idLength[b];
    if (la < 0 || lb < 0) {
      return la < 0 ? (lb < 0 ? 0 : -1) : 1;
    }
    return Arrays.compareUnsigned(ids, idStart[a], idStart[a] + la, ids, idStart[b], idStart[b] + lb);
  }

  /** Stable merge sort of perm[from, to) by id. */
  private void sortById(int from, int to) {
    if (to - from <= 16) {
      for (int i = from + 1; i < to; i++) {
        int v = perm[i];
        int j = i - 1;
        while (j >= from && compareIds(perm[j], v) > 0) {
          perm[j + 1] = perm[j];
          j--;
        }
        perm[j + 1] = v;
      }
      return;
    }
    int mid = (from + to) >>> 1;
    sortById(from, mid);
    sortById(mid, to);
    if (compareIds(perm[mid - 1], perm[mid]) <= 0) {
      return;
    }
    System.arraycopy(perm, from, mergeTmp, from, mid - from);
    int i = from;
    int j = mid;
    int o = from;
    while (i < mid && j < to) {
      perm[o++] = compareIds(perm[j], mergeTmp[i]) < 0 ? perm[j++] : mergeTmp[i++];
    }
    while (i < mid) {
      perm[o++] = mergeTmp[i++];
    }
  }
}
