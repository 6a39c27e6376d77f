/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.search;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.DocAndFloatFeatureBuffer;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.BytesRef;

import java.io.IOException;
import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The impact postings of the searched terms, copied out of Lucene into compact arrays that the exact search reads
 * window by window ({@link CompactImpactSearch}).
 *
 * <p>Per term and segment: the live documents' postings in docid order, split into windows of {@link #window}
 * docids (2^15 by default); a posting is its docid relative to its window (a {@code char}, 2 bytes) and its
 * impact (a {@code byte} when the term's largest impact is at most 255, else a {@code char}): 3 bytes a posting (4
 * for terms with larger impacts). A window's postings of a term are one contiguous slice ({@code starts[w] ..
 * starts[w + 1]}), and each window has the term's largest impact in it (an exact per-window bound). Each window is
 * also split into blocks of {@link #block} docids (2^6 when the block-max search is on, else one block a window),
 * each with the term's largest impact in it and where its postings start in the window's slice, for the block-max
 * search ({@link BlockMaxSearch}). Deleted
 * documents are left out (a reader never changes its deletions). A term whose impacts exceed 65,535 is not copied
 * (its queries take Lucene's postings).
 *
 * <p>Built per term the first time a query uses it in a segment (read through Lucene once, in bulk; kept for the
 * searcher's life), within a memory budget: a term that would take the copies past it is not copied, and queries
 * using it search that segment through Lucene's postings instead (logged once). Memory: 3 or 4 bytes a posting plus
 * 6 bytes a window and 3 bytes a block (4 for terms with impacts above 255) per term, plus a map entry (about 100
 * bytes) and 8 bytes a segment per term searched. Blocks of 64 docids take 3 bytes per 64 documents of the segment
 * per copied term: about 1 byte a posting for a term in 5% of the documents, 2.75 bytes a posting more on average
 * for the 100 fitted queries on 1M and 4M documents (5.77 instead of 3.02 bytes a posting in all).
 */
final class CompactImpacts {
  private static final Logger LOG = LogManager.getLogger(CompactImpacts.class);

  /** log2 of the docids per window by default (6 to 16: window-relative docids are chars). */
  static final int DEFAULT_SHIFT = Integer.getInteger("splade.search.compactShift", 15);
  /** log2 of the docids per block by default (at most the window's). */
  static final int DEFAULT_BLOCK_SHIFT = Integer.getInteger("splade.search.blockShift", 6);
  /** The default budget: half the JVM's largest heap. */
  static final long DEFAULT_MAX_BYTES =
      Long.getLong("splade.search.compactMaxBytes", Runtime.getRuntime().maxMemory() / 2);

  /** One term's postings in one segment. */
  static final class Postings {
    /** Window w's postings are [starts[w], starts[w + 1]). */
    final int[] starts;
    /** Docid minus its window's first docid. */
    final char[] docs;
    /** Impacts, when the largest is at most 255 (else null). */
    final byte[] impacts8;
    /** Impacts, when the largest exceeds 255 (else null). */
    final char[] impacts16;
    /** The largest impact in each window (0 in a window without postings). */
    final char[] windowMax;
    /** The largest impact in the segment. */
    final int max;
    /** Block b's postings start at starts[w] + blockStarts[b] (w: its window) and end where block b + 1's do. */
    final char[] blockStarts;
    /** The largest impact in each block, when the largest is at most 255 (else null; 0 in an empty block). */
    final byte[] blockMax8;
    /** The largest impact in each block, when the largest exceeds 255 (else null). */
    final char[] blockMax16;

    Postings(int[] starts, char[] docs, byte[] impacts8, char[] impacts16, char[] windowMax, int max,
             char[] blockStarts, byte[] blockMax8, char[] blockMax16) {
      this.starts = starts;
      this.docs = docs;
      this.impacts8 = impacts8;
      this.impacts16 = impacts16;
      this.windowMax = windowMax;
      this.max = max;
      this.blockStarts = blockStarts;
      this.blockMax8 = blockMax8;
      this.blockMax16 = blockMax16;
    }

    int impact(int i) {
      return impacts8 != null ? impacts8[i] & 0xFF : impacts16[i];
    }

    long bytes() {
      return bytes(docs.length, starts.length - 1, blockStarts.length, impacts8 == null);
    }

    static long bytes(long postings, int windows, int blocks, boolean wide) {
      return postings * (wide ? 4 : 3) + 6L * windows + (wide ? 4L : 3L) * blocks + 96;
    }
  }

  /** A term left to Lucene's postings (its impacts too large, or over the budget). */
  private static final Postings NONE =
      new Postings(new int[1], new char[0], new byte[0], null, new char[0], 0, new char[0], new byte[0], null);

  /** log2 of the docids per window, and the window. */
  final int shift;
  final int window;
  /** log2 of the docids per block, and the block. */
  final int blockShift;
  final int block;
  /** Per term: its postings in each segment (a slot stays null until the term is looked up there). */
  private final ConcurrentHashMap<BytesRef, Postings[]> slots = new ConcurrentHashMap<>();
  private final int[] maxDocs;
  private final Bits[] liveDocs;
  private final long maxBytes;
  private final AtomicLong used = new AtomicLong();
  private final AtomicBoolean overBudgetLogged = new AtomicBoolean();

  CompactImpacts(IndexReader reader, long maxBytes, int shift, int blockShift) {
    if (shift < 6 || shift > 16) {
      throw new IllegalArgumentException("the compact postings' windows must have 2^6 to 2^16 docids, got 2^" + shift
          + " (system property splade.search.compactShift)");
    }
    if (blockShift < 3 || blockShift > shift) {
      throw new IllegalArgumentException("the compact postings' blocks must have 2^3 docids to a window's (2^" + shift
          + "), got 2^" + blockShift + " (system property splade.search.blockShift)");
    }
    this.shift = shift;
    this.window = 1 << shift;
    this.blockShift = blockShift;
    this.block = 1 << blockShift;
    int leaves = reader.leaves().size();
    maxDocs = new int[leaves];
    liveDocs = new Bits[leaves];
    for (int i = 0; i < leaves; i++) {
      maxDocs[i] = reader.leaves().get(i).reader().maxDoc();
      liveDocs[i] = reader.leaves().get(i).reader().getLiveDocs();
    }
    this.maxBytes = maxBytes;
  }

  /** Bytes held by the copies so far. */
  long bytesUsed() {
    return used.get();
  }

  /** Marks a term that a segment does not hold. */
  static final Postings ABSENT =
      new Postings(new int[1], new char[0], new byte[0], null, new char[0], 0, new char[0], new byte[0], null);
  /** What a term's slots take besides their references (a map entry and the key), counted in the budget. */
  private static final long SLOTS_BYTES = 100;

  /**
   * The slots of {@code term}, one per segment, for {@link #lookup}: one map lookup per query term, not one per term
   * and segment (with 16 segments and 30 terms a query, 480 hash lookups a query cost about 4% of a search).
   * Counted in the budget; past it, a term not seen before gets slots that are not kept.
   */
  Postings[] slots(BytesRef term) {
    Postings[] known = slots.get(term);
    if (known != null) {
      return known;
    }
    long bytes = SLOTS_BYTES + 8L * maxDocs.length;
    if (used.addAndGet(bytes) > maxBytes) {
      used.addAndGet(-bytes);
      return new Postings[maxDocs.length];
    }
    Postings[] fresh = new Postings[maxDocs.length];
    known = slots.putIfAbsent(BytesRef.deepCopyOf(term), fresh);
    if (known != null) {
      used.addAndGet(-bytes);
      return known;
    }
    return fresh;
  }

  /**
   * The compact postings of {@code term} in segment {@code leaf} ({@code termSlots}: {@link #slots} of the term):
   * {@link #ABSENT} when the segment does not hold it, null when the term is left to Lucene's postings; else copied
   * on first use. The segment's terms dictionary ({@code terms}) is only searched the first time.
   */
  Postings lookup(Postings[] termSlots, int leaf, BytesRef term, Terms terms) throws IOException {
    Postings known = termSlots[leaf];
    if (known == null) {
      synchronized (termSlots) { // one copy per term and segment, whatever the threads
        known = termSlots[leaf];
        if (known == null) {
          TermsEnum termsEnum = terms.iterator();
          known = termsEnum.seekExact(term) ? build(leaf, term, termsEnum) : ABSENT;
          termSlots[leaf] = known; // its fields are final: safely read by threads that do not lock
        }
      }
    }
    return known == NONE ? null : known;
  }

  private Postings build(int leaf, BytesRef term, TermsEnum terms) throws IOException {
    int maxDoc = maxDocs[leaf];
    int windows = (int) (((long) maxDoc + window - 1) >>> shift);
    int blocks = windows << (shift - blockShift);
    int docFreq = terms.docFreq();
    long reserve = Postings.bytes(docFreq, windows, blocks, true); // the most it can take, corrected below
    if (used.addAndGet(reserve) > maxBytes) {
      used.addAndGet(-reserve);
      if (overBudgetLogged.compareAndSet(false, true)) {
        LOG.warn("The compact impact postings reached their memory budget ({} bytes; system property"
            + " splade.search.compactMaxBytes or SpladeBatchSearcher's argument): queries using term \"{}\" and"
            + " other terms not yet copied search those segments through Lucene's postings (slower, same results)",
            maxBytes, term.utf8ToString());
      }
      return NONE;
    }
    Bits live = liveDocs[leaf];
    int[] starts = new int[windows + 1];
    char[] docs = new char[docFreq];
    int[] impacts = new int[docFreq];
    char[] windowMax = new char[windows];
    int[] blockCounts = new int[blocks];
    char[] blockMax = new char[blocks];
    int max = 0;
    int n = 0;
    PostingsEnum postings = terms.postings(null, PostingsEnum.FREQS);
    DocAndFloatFeatureBuffer buffer = new DocAndFloatFeatureBuffer();
    postings.nextDoc();
    while (postings.docID() != DocIdSetIterator.NO_MORE_DOCS) {
      postings.nextPostings(DocIdSetIterator.NO_MORE_DOCS, buffer);
      if (live != null) {
        buffer.apply(live);
      }
      for (int j = 0, count = buffer.size; j < count; j++) {
        int doc = buffer.docs[j];
        int impact = (int) buffer.features[j];
        int w = doc >>> shift;
        starts[w + 1]++;
        docs[n] = (char) (doc & (window - 1));
        impacts[n] = impact;
        windowMax[w] = (char) Math.min(65535, Math.max(windowMax[w], impact));
        int b = doc >>> blockShift;
        blockCounts[b]++;
        blockMax[b] = (char) Math.min(65535, Math.max(blockMax[b], impact));
        max = Math.max(max, impact);
        n++;
      }
    }
    for (int w = 0; w < windows; w++) {
      starts[w + 1] += starts[w];
    }
    boolean wide = max > 255;
    long bytes = Postings.bytes(n, windows, blocks, wide);
    used.addAndGet(bytes - reserve);
    if (max > 65535) {
      used.addAndGet(-bytes);
      return NONE;
    }
    if (n < docFreq) {
      docs = Arrays.copyOf(docs, n);
    }
    char[] blockStarts = new char[blocks]; // offsets within the window's slice: at most a window's docids
    int perWindow = 1 << (shift - blockShift);
    for (int b = 0, offset = 0; b < blocks; b++) {
      offset = (b & (perWindow - 1)) == 0 ? 0 : offset;
      blockStarts[b] = (char) offset;
      offset += blockCounts[b];
    }
    byte[] blockMax8 = null;
    char[] blockMax16 = null;
    if (wide) {
      blockMax16 = blockMax;
    } else {
      blockMax8 = new byte[blocks];
      for (int b = 0; b < blocks; b++) {
        blockMax8[b] = (byte) blockMax[b];
      }
    }
    byte[] impacts8 = null;
    char[] impacts16 = null;
    if (wide) {
      impacts16 = new char[n];
      for (int i = 0; i < n; i++) {
        impacts16[i] = (char) impacts[i];
      }
    } else {
      impacts8 = new byte[n];
      for (int i = 0; i < n; i++) {
        impacts8[i] = (byte) impacts[i];
      }
    }
    return new Postings(starts, docs, impacts8, impacts16, windowMax, max, blockStarts, blockMax8, blockMax16);
  }
}
