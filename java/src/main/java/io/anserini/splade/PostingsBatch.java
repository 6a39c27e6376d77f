/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

import org.apache.lucene.index.FieldInvertState;
import org.apache.lucene.index.IndexOptions;
import org.apache.lucene.search.similarities.Similarity;
import org.apache.lucene.util.ArrayUtil;
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
  private final boolean keepInputOrder;
  // Open addressing (load <= 1/2): a term's slot holds its hash, its number and the term; -1 marks a free slot.
  private int[] slotHash = new int[1 << 12];
  private int[] slotNumber = filled(1 << 12);
  private String[] slotTerm = new String[1 << 12];
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
  private BytesRef[] sortedIds;
  private int[] idDocs;
  private int[] idStart;

  /**
   * {@code similarity} computes the norms, as IndexWriter would; {@code keepRaw} keeps each document's raw text;
   * {@code keepInputOrder} keeps each document's terms in input order once frozen ({@link #termAt}).
   */
  PostingsBatch(Similarity similarity, boolean keepRaw, boolean keepInputOrder) {
    this.similarity = similarity;
    this.keepInputOrder = keepInputOrder;
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
      int size = ArrayUtil.oversize(postings + n, Integer.BYTES);
      postTerm = Arrays.copyOf(postTerm, size);
      postFreq = Arrays.copyOf(postFreq, size);
    }
    if (docs + 1 >= docStart.length) {
      int size = ArrayUtil.oversize(docs + 2, Integer.BYTES);
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

  private static int[] filled(int size) {
    int[] a = new int[size];
    Arrays.fill(a, -1);
    return a;
  }

  /** The term's number in this batch, given to it on first sight. */
  private int number(String term) {
    int h = term.hashCode();
    int mask = slotNumber.length - 1;
    int i = (h ^ (h >>> 16)) & mask;
    while (slotNumber[i] >= 0) {
      if (slotHash[i] == h && slotTerm[i].equals(term)) {
        return slotNumber[i];
      }
      i = (i + 1) & mask;
    }
    int number = numTerms++;
    slotHash[i] = h;
    slotNumber[i] = number;
    slotTerm[i] = term;
    if (number == termStrings.length) {
      termStrings = Arrays.copyOf(termStrings, number * 2);
    }
    termStrings[number] = term;
    if (2 * numTerms > slotNumber.length) {
      rehash();
    }
    return number;
  }

  private void rehash() {
    int size = slotNumber.length * 2;
    slotHash = new int[size];
    slotNumber = filled(size);
    slotTerm = new String[size];
    for (int t = 0; t < numTerms; t++) {
      int h = termStrings[t].hashCode();
      int i = (h ^ (h >>> 16)) & (size - 1);
      while (slotNumber[i] >= 0) {
        i = (i + 1) & (size - 1);
      }
      slotHash[i] = h;
      slotNumber[i] = t;
      slotTerm[i] = termStrings[t];
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
    slotHash = null;
    slotNumber = null;
    slotTerm = null;
    BytesRef[] bytes = new BytesRef[numTerms];
    Integer[] order = new Integer[numTerms];
    for (int t = 0; t < numTerms; t++) {
      bytes[t] = new BytesRef(termStrings[t]);
      order[t] = t;
    }
    termStrings = null;
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
    termDocs = new int[postings];
    termFreqs = new int[postings];
    int[] next = Arrays.copyOf(termPostingStart, numTerms);
    for (int d = 0; d < docs; d++) {
      for (int p = docStart[d]; p < docStart[d + 1]; p++) {
        int slot = next[postTerm[p]]++;
        termDocs[slot] = d;
        termFreqs[slot] = postFreq[p];
      }
    }
    if (!keepInputOrder) {
      postTerm = null;
      postFreq = null;
    }
    // Term vectors: each document's terms in order, by walking the terms in order (no sorting).
    vectorTerms = new int[postings];
    vectorFreqs = new int[postings];
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
    return new SortedPostings(sortedTerms, termPostingStart, termDocs, termFreqs, docs, sumOf(termFreqs));
  }

  /** The postings of {@code id} (docs only; an id given to several documents has several postings). */
  SortedPostings idPostings() {
    return new SortedPostings(sortedIds, idStart, idDocs, null, docs, docs);
  }

  private static long sumOf(int[] values) {
    long sum = 0;
    for (int v : values) {
      sum += v;
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
    return new SortedPostings(terms, start, new int[n], Arrays.copyOfRange(vectorFreqs, from, from + n), 1, sum);
  }

  /**
   * Document {@code doc}'s terms and frequencies in the order the input gave them (after freezing, each term as its
   * rank in {@link #contentsPostings()}); only with {@code keepInputOrder}.
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
