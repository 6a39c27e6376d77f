/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

import org.apache.lucene.index.BaseTermsEnum;
import org.apache.lucene.index.ImpactsEnum;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.SlowImpactsEnum;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.util.BytesRef;

import java.util.Arrays;

/**
 * One field's terms and postings held in arrays, read through Lucene's {@link Terms} API (what a segment merge
 * reads): {@code terms} sorted, term {@code t}'s postings are {@code docs[start[t] .. start[t + 1])} in increasing
 * order, with {@code freqs} (or none: docs only, every frequency 1).
 */
final class SortedPostings extends Terms {
  private final BytesRef[] terms;
  private final int[] start;
  private final int[] docs;
  private final int[] freqs;
  private final long sumTotalTermFreq;
  private final int docCount;

  /** {@code docCount}: documents with at least one posting; {@code sumTotalTermFreq}: the sum of the frequencies. */
  SortedPostings(BytesRef[] terms, int[] start, int[] docs, int[] freqs, int docCount, long sumTotalTermFreq) {
    this.terms = terms;
    this.start = start;
    this.docs = docs;
    this.freqs = freqs;
    this.docCount = docCount;
    this.sumTotalTermFreq = sumTotalTermFreq;
  }

  @Override
  public TermsEnum iterator() {
    return new Enum();
  }

  @Override
  public long size() {
    return terms.length;
  }

  @Override
  public long getSumTotalTermFreq() {
    return sumTotalTermFreq;
  }

  @Override
  public long getSumDocFreq() {
    return start[terms.length];
  }

  @Override
  public int getDocCount() {
    return docCount;
  }

  @Override
  public boolean hasFreqs() {
    return freqs != null;
  }

  @Override
  public boolean hasOffsets() {
    return false;
  }

  @Override
  public boolean hasPositions() {
    return false;
  }

  @Override
  public boolean hasPayloads() {
    return false;
  }

  private final class Enum extends BaseTermsEnum {
    private int ord = -1;

    @Override
    public SeekStatus seekCeil(BytesRef text) {
      int i = Arrays.binarySearch(terms, text);
      if (i >= 0) {
        ord = i;
        return SeekStatus.FOUND;
      }
      ord = -i - 1;
      return ord < terms.length ? SeekStatus.NOT_FOUND : SeekStatus.END;
    }

    @Override
    public void seekExact(long ord) {
      this.ord = (int) ord;
    }

    @Override
    public BytesRef next() {
      if (ord + 1 >= terms.length) {
        ord = terms.length;
        return null;
      }
      return terms[++ord];
    }

    @Override
    public BytesRef term() {
      return terms[ord];
    }

    @Override
    public long ord() {
      return ord;
    }

    @Override
    public int docFreq() {
      return start[ord + 1] - start[ord];
    }

    @Override
    public long totalTermFreq() {
      if (freqs == null) {
        return docFreq();
      }
      long sum = 0;
      for (int p = start[ord]; p < start[ord + 1]; p++) {
        sum += freqs[p];
      }
      return sum;
    }

    @Override
    public PostingsEnum postings(PostingsEnum reuse, int flags) {
      Postings p = reuse instanceof Postings r && r.owner() == SortedPostings.this ? r : new Postings();
      p.reset(start[ord], start[ord + 1]);
      return p;
    }

    @Override
    public ImpactsEnum impacts(int flags) {
      return new SlowImpactsEnum(postings(null, flags));
    }
  }

  private final class Postings extends PostingsEnum {
    private int from;
    private int to;
    private int at;

    SortedPostings owner() {
      return SortedPostings.this;
    }

    void reset(int from, int to) {
      this.from = from;
      this.to = to;
      this.at = from - 1;
    }

    @Override
    public int freq() {
      return freqs == null ? 1 : freqs[at];
    }

    @Override
    public int nextPosition() {
      return -1;
    }

    @Override
    public int startOffset() {
      return -1;
    }

    @Override
    public int endOffset() {
      return -1;
    }

    @Override
    public BytesRef getPayload() {
      return null;
    }

    @Override
    public int docID() {
      if (at < from) {
        return -1;
      }
      return at < to ? docs[at] : NO_MORE_DOCS;
    }

    @Override
    public int nextDoc() {
      if (at < to) {
        at++;
      }
      return docID();
    }

    @Override
    public int advance(int target) {
      int doc;
      while ((doc = nextDoc()) < target) {
        // linear: merges only iterate
      }
      return doc;
    }

    @Override
    public long cost() {
      return to - from;
    }
  }
}
