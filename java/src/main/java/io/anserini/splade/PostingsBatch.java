/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

import org.apache.lucene.index.FieldInvertState;
import org.apache.lucene.index.IndexOptions;
import org.apache.lucene.search.similarities.Similarity;
import org.apache.lucene.util.BytesRef;
import org.apache.lucene.util.Version;

import java.util.Arrays;

/**
 * A batch of documents' postings in compact arrays, filled one document at a time and then frozen into what a
 * segment needs: the terms in Lucene's order (UTF-8 bytes), each term's postings in docid order, the ids in order,
 * and each document's norm.
 *
 * <p>While filling: a posting is two ints (the term's number in this batch and its frequency), appended in document
 * order; a term costs one slot of an open-addressing table. Frozen: four more ints a posting (docids and frequencies
 * grouped by term, and each document's terms in order for its term vector).
 * {@link #postings()} tells the caller when to flush (the writer bounds a batch by documents and by postings).
 */
final class PostingsBatch {
  static final String CONTENTS = "contents";

  private final Similarity similarity;
  // Open addressing (load <= 1/2): a slot is the term's hash (high 32 bits) and its number + 1 (0: a free slot); the
  // terms' characters lie one after another in a pool (compared there: no pointer to chase per posting).
  private long[] slots = new long[1 << 12];
  private char[] pool = new char[1 << 14];
  private int[] poolStart = new int[1025];
  private int numTerms;
  private String[] termStrings = new String[1024];
  private int[] postTerm = new int[1 << 16];
  private int[] postFreq = new int[1 << 16];
  private int postings;
  private int[] docStart = new int[1025];
  private String[] ids = new String[1024];
  private String[] raws;
  private long[] norms = new long[1024];
  private int docs;

  // Frozen state.
  private BytesRef[] sortedTerms;
  private int[] rankOf;
  private int[] termPostingStart;
  private int[] termDocs;
  private int[] termFreqs;
  private int[] vectorTerms;
  private int[] vectorFreqs;
  private int[] zeros = new int[256];
  private BytesRef[] sortedIds;
  private int[] idDocs;
  private int[] idStart;

  /** {@code similarity} computes the norms, as IndexWriter would; {@code keepRaw} keeps each document's raw text. */
  PostingsBatch(Similarity similarity, boolean keepRaw) {
    this.similarity = similarity;
    this.raws = keepRaw ? new String[1024] : null;
  }

  int docs() {
    return docs;
  }

  int postings() {
    return postings;
  }

  /** Adds a document with at least one term; {@code terms} are distinct, {@code freqs} positive. */
  void add(String id, String[] terms, int[] freqs, String raw) {
    if (sortedTerms != null) {
      throw new IllegalStateException("batch already frozen");
    }
    int n = terms.length;
    if (postings + n > postTerm.length) {
      int size = Math.max(postings + n, 2 * postTerm.length);
      postTerm = Arrays.copyOf(postTerm, size);
      postFreq = Arrays.copyOf(postFreq, size);
    }
    if (docs + 1 >= docStart.length) {
      int size = Math.max(docs + 2, 2 * docStart.length);
      docStart = Arrays.copyOf(docStart, size);
      ids = Arrays.copyOf(ids, size);
      norms = Arrays.copyOf(norms, size);
      if (raws != null) {
        raws = Arrays.copyOf(raws, size);
      }
    }
    long length = 0;
    int maxFreq = 0;
    for (int i = 0; i < n; i++) {
      postTerm[postings] = number(terms[i]);
      postFreq[postings] = freqs[i];
      postings++;
      length += freqs[i];
      maxFreq = Math.max(maxFreq, freqs[i]);
    }
    ids[docs] = id;
    if (raws != null) {
      raws[docs] = raw;
    }
    norms[docs] = norm(n, Math.toIntExact(length), maxFreq);
    docs++;
    docStart[docs] = postings;
  }

  /** The term's number in this batch, given to it on first sight. */
  private int number(String term) {
    int h = term.hashCode();
    int mask = slots.length - 1;
    int i = (h ^ (h >>> 16)) & mask;
    long slot;
    while ((slot = slots[i]) != 0) {
      if ((int) (slot >>> 32) == h) {
        int number = (int) slot - 1;
        if (sameChars(term, poolStart[number], poolStart[number + 1])) {
          return number;
        }
      }
      i = (i + 1) & mask;
    }
    int number = numTerms++;
    slots[i] = ((long) h << 32) | (number + 1);
    if (number == termStrings.length) {
      termStrings = Arrays.copyOf(termStrings, number * 2);
      poolStart = Arrays.copyOf(poolStart, number * 2 + 1);
    }
    termStrings[number] = term;
    int from = poolStart[number];
    if (from + term.length() > pool.length) {
      pool = Arrays.copyOf(pool, Math.max(from + term.length(), 2 * pool.length));
    }
    term.getChars(0, term.length(), pool, from);
    poolStart[number + 1] = from + term.length();
    if (2 * numTerms > slots.length) {
      rehash();
    }
    return number;
  }

  private boolean sameChars(String term, int from, int to) {
    if (to - from != term.length()) {
      return false;
    }
    for (int j = 0; j < term.length(); j++) {
      if (pool[from + j] != term.charAt(j)) {
        return false;
      }
    }
    return true;
  }

  private void rehash() {
    int size = slots.length * 2;
    slots = new long[size];
    for (int t = 0; t < numTerms; t++) {
      int h = termStrings[t].hashCode();
      int i = (h ^ (h >>> 16)) & (size - 1);
      while (slots[i] != 0) {
        i = (i + 1) & (size - 1);
      }
      slots[i] = ((long) h << 32) | (t + 1);
    }
  }

  /** The norm IndexWriter's indexing chain computes: one token a term, the field length the sum of frequencies. */
  private long norm(int uniqueTerms, int length, int maxFreq) {
    FieldInvertState state = new FieldInvertState(Version.LATEST.major, CONTENTS, IndexOptions.DOCS_AND_FREQS,
        uniqueTerms - 1, length, 0, 0, maxFreq, uniqueTerms);
    long norm = similarity.computeNorm(state);
    if (norm == 0) {
      throw new IllegalStateException(similarity + " returned 0 for the norm of a non-empty field");
    }
    return norm;
  }

  /** Sorts the terms and ids and groups the postings by term; no more documents can be added. */
  void freeze() {
    if (sortedTerms != null) {
      throw new IllegalStateException("batch already frozen");
    }
    BytesRef[] bytes = new BytesRef[numTerms];
    Integer[] order = new Integer[numTerms];
    for (int t = 0; t < numTerms; t++) {
      bytes[t] = new BytesRef(termStrings[t]);
      order[t] = t;
    }
    Arrays.sort(order, (a, b) -> bytes[a].compareTo(bytes[b]));
    // The sorted terms' bytes in one array, in order: writing a segment compares and copies neighbouring terms.
    int totalBytes = 0;
    for (BytesRef b : bytes) {
      totalBytes += b.length;
    }
    byte[] pool = new byte[totalBytes];
    sortedTerms = new BytesRef[numTerms];
    rankOf = new int[numTerms];
    int offset = 0;
    for (int r = 0; r < numTerms; r++) {
      BytesRef b = bytes[order[r]];
      System.arraycopy(b.bytes, b.offset, pool, offset, b.length);
      sortedTerms[r] = new BytesRef(pool, offset, b.length);
      offset += b.length;
      rankOf[order[r]] = r;
    }
    termPostingStart = new int[numTerms + 1];
    for (int p = 0; p < postings; p++) {
      postTerm[p] = rankOf[postTerm[p]];
      termPostingStart[postTerm[p] + 1]++;
    }
    for (int r = 0; r < numTerms; r++) {
      termPostingStart[r + 1] += termPostingStart[r];
    }
    termDocs = atLeast(termDocs, postings);
    termFreqs = atLeast(termFreqs, postings);
    int[] next = Arrays.copyOf(termPostingStart, numTerms);
    for (int d = 0; d < docs; d++) {
      for (int p = docStart[d]; p < docStart[d + 1]; p++) {
        int slot = next[postTerm[p]]++;
        termDocs[slot] = d;
        termFreqs[slot] = postFreq[p];
      }
    }
    // Term vectors: each document's terms in order, by walking the terms in order (no sorting).
    vectorTerms = atLeast(vectorTerms, postings);
    vectorFreqs = atLeast(vectorFreqs, postings);
    int[] fill = Arrays.copyOf(docStart, docs);
    for (int r = 0; r < numTerms; r++) {
      for (int p = termPostingStart[r]; p < termPostingStart[r + 1]; p++) {
        int slot = fill[termDocs[p]]++;
        vectorTerms[slot] = r;
        vectorFreqs[slot] = termFreqs[p];
      }
    }
    freezeIds();
  }

  private static int[] atLeast(int[] array, int size) {
    return array != null && array.length >= size ? array : new int[Math.max(size, array == null ? 0 : 2 * array.length)];
  }

  /** Empties the batch (once its segment is written), keeping its arrays for the next one. */
  void clear() {
    Arrays.fill(slots, 0);
    Arrays.fill(termStrings, 0, numTerms, null);
    numTerms = 0;
    postings = 0;
    docs = 0;
    sortedTerms = null;
    rankOf = null;
    termPostingStart = null;
    sortedIds = null;
    idDocs = null;
    idStart = null;
  }

  private void freezeIds() {
    BytesRef[] bytes = new BytesRef[docs];
    Integer[] order = new Integer[docs];
    for (int d = 0; d < docs; d++) {
      bytes[d] = new BytesRef(ids[d]);
      order[d] = d;
    }
    Arrays.sort(order, (a, b) -> {
      int c = bytes[a].compareTo(bytes[b]);
      return c != 0 ? c : Integer.compare(a, b);
    });
    idDocs = new int[docs];
    BytesRef[] distinct = new BytesRef[docs];
    idStart = new int[docs + 1];
    int n = 0;
    for (int i = 0; i < docs; i++) {
      idDocs[i] = order[i];
      if (n == 0 || !bytes[order[i]].equals(distinct[n - 1])) {
        distinct[n] = bytes[order[i]];
        idStart[n] = i;
        n++;
      }
    }
    idStart[n] = docs;
    sortedIds = Arrays.copyOf(distinct, n);
    idStart = Arrays.copyOf(idStart, n + 1);
  }

  /** The postings of {@code contents}: terms in order, with docids and frequencies grouped by term. */
  SortedPostings contentsPostings() {
    return new SortedPostings(sortedTerms, termPostingStart, termDocs, termFreqs, docs, sumOf(termFreqs, postings));
  }

  /** The postings of {@code id} (docs only; an id given to several documents has several postings). */
  SortedPostings idPostings() {
    return new SortedPostings(sortedIds, idStart, idDocs, null, docs, docs);
  }

  private static long sumOf(int[] values, int n) {
    long sum = 0;
    for (int i = 0; i < n; i++) {
      sum += values[i];
    }
    return sum;
  }

  /** Document {@code doc}'s term vector: its terms in order with their frequencies (one posting each, docid 0). */
  SortedPostings termVector(int doc) {
    int from = docStart[doc];
    int n = docStart[doc + 1] - from;
    BytesRef[] terms = new BytesRef[n];
    int[] start = new int[n + 1];
    long sum = 0;
    for (int i = 0; i < n; i++) {
      terms[i] = sortedTerms[vectorTerms[from + i]];
      start[i + 1] = i + 1;
      sum += vectorFreqs[from + i];
    }
    if (zeros.length < n) {
      zeros = new int[Math.max(n, 2 * zeros.length)];
    }
    return new SortedPostings(terms, start, zeros, Arrays.copyOfRange(vectorFreqs, from, from + n), 1, sum);
  }

  /**
   * Document {@code doc}'s terms and frequencies in the order the input gave them (after freezing, each term as its
   * rank in {@link #contentsPostings()}).
   */
  int termAt(int posting) {
    return postTerm[posting];
  }

  int freqAt(int posting) {
    return postFreq[posting];
  }

  int docStart(int doc) {
    return docStart[doc];
  }

  BytesRef sortedTerm(int rank) {
    return sortedTerms[rank];
  }

  String id(int doc) {
    return ids[doc];
  }

  String raw(int doc) {
    return raws == null ? null : raws[doc];
  }

  long norm(int doc) {
    return norms[doc];
  }
}
