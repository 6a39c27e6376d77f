/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.search;

import org.apache.lucene.index.FreqAndNormBuffer;
import org.apache.lucene.index.Impacts;
import org.apache.lucene.index.ImpactsEnum;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.util.BytesRef;

import java.io.IOException;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The largest impact (term frequency) of each term in each segment: the bound that lets the exact search skip
 * documents. Read from Lucene's own impacts (the skip data of the postings holds the competitive (freq, norm) pairs
 * of every block of 256 postings and of every 32 such blocks): one look per 8,192 postings, plus the postings of the
 * last incomplete block, whose impacts Lucene does not store (it answers "anything"), read one by one. Computed the
 * first time a query uses the term in the segment and kept: memory is one map entry per term seen per segment (about
 * 100 bytes; 30k-term SPLADE vocabularies: a few MiB per segment at most).
 */
public final class MaxImpacts {
  private final ConcurrentHashMap<BytesRef, Integer>[] perLeaf;

  @SuppressWarnings("unchecked")
  MaxImpacts(IndexReader reader) {
    perLeaf = new ConcurrentHashMap[reader.leaves().size()];
    for (int i = 0; i < perLeaf.length; i++) {
      perLeaf[i] = new ConcurrentHashMap<>();
    }
  }

  /** The largest frequency of the term on which {@code terms} is positioned, in segment {@code leaf}. */
  int get(int leaf, BytesRef term, TermsEnum terms) throws IOException {
    Integer known = perLeaf[leaf].get(term);
    if (known != null) {
      return known;
    }
    int max = compute(terms);
    perLeaf[leaf].put(BytesRef.deepCopyOf(term), max);
    return max;
  }

  /** The largest frequency of the term {@code terms} is positioned on, from its impacts (see the class comment). */
  public static int compute(TermsEnum terms) throws IOException {
    ImpactsEnum postings = terms.impacts(PostingsEnum.FREQS);
    int max = 0;
    int target = 0;
    while (true) {
      postings.advanceShallow(target);
      Impacts impacts = postings.getImpacts();
      int level = impacts.numLevels() - 1;
      int upTo = impacts.getDocIdUpTo(level);
      int largest = largest(impacts.getImpacts(level));
      if (largest == Integer.MAX_VALUE) { // no stored impacts here: read the rest
        int doc = postings.docID() < target ? postings.advance(target) : postings.docID();
        for (; doc != DocIdSetIterator.NO_MORE_DOCS; doc = postings.nextDoc()) {
          max = Math.max(max, postings.freq());
        }
        return max;
      }
      max = Math.max(max, largest);
      if (upTo == DocIdSetIterator.NO_MORE_DOCS) {
        return max;
      }
      target = upTo + 1;
    }
  }

  static int largest(FreqAndNormBuffer impacts) {
    int largest = 0;
    for (int i = 0; i < impacts.size; i++) {
      largest = Math.max(largest, impacts.freqs[i]);
    }
    return largest;
  }

  /** The largest frequency by reading every posting (for tests). */
  public static int scan(TermsEnum terms) throws IOException {
    PostingsEnum postings = terms.postings(null, PostingsEnum.FREQS);
    int max = 0;
    for (int doc = postings.nextDoc(); doc != DocIdSetIterator.NO_MORE_DOCS; doc = postings.nextDoc()) {
      max = Math.max(max, postings.freq());
    }
    return max;
  }
}
