/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

import org.apache.lucene.codecs.DocValuesProducer;
import org.apache.lucene.codecs.FieldsProducer;
import org.apache.lucene.codecs.KnnVectorsReader;
import org.apache.lucene.codecs.NormsProducer;
import org.apache.lucene.codecs.PointsReader;
import org.apache.lucene.codecs.StoredFieldsReader;
import org.apache.lucene.codecs.TermVectorsReader;
import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.CodecReader;
import org.apache.lucene.index.DocValuesSkipIndexType;
import org.apache.lucene.index.DocValuesSkipper;
import org.apache.lucene.index.DocValuesType;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.FieldInfos;
import org.apache.lucene.index.Fields;
import org.apache.lucene.index.IndexOptions;
import org.apache.lucene.index.LeafMetaData;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.index.SortedDocValues;
import org.apache.lucene.index.SortedNumericDocValues;
import org.apache.lucene.index.SortedSetDocValues;
import org.apache.lucene.index.StoredFieldVisitor;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.VectorEncoding;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.BytesRef;
import org.apache.lucene.util.Version;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;

/**
 * A frozen {@link PostingsBatch} seen as a Lucene segment, for {@code IndexWriter.addIndexes(CodecReader...)}: Lucene's
 * merge code then writes a real segment with the index's codec, without inverting one document at a time.
 *
 * <p>The fields are those of {@code SpladeImpactGenerator}'s documents, with the same field numbers and options:
 * {@code id} (indexed docs only, no norms, stored, binary doc values), {@code raw} (stored; with {@code storeRaw}),
 * {@code contents} (docs and frequencies, norms, term vectors with {@code storeDocvectors}; stored as the
 * pseudo-document with {@code storeContents}).
 */
final class BatchCodecReader extends CodecReader {
  static final String ID = "id";
  static final String RAW = "raw";
  static final String CONTENTS = PostingsBatch.CONTENTS;

  private final PostingsBatch batch;
  private final FieldInfos fieldInfos;
  private final FieldInfo idInfo;
  private final FieldInfo rawInfo;
  private final FieldInfo contentsInfo;
  private final boolean storeContents;
  private final Terms contents;
  private final Terms ids;

  /** {@code batch} must be frozen. */
  BatchCodecReader(PostingsBatch batch, boolean storeDocvectors, boolean storeRaw, boolean storeContents) {
    this.batch = batch;
    this.storeContents = storeContents;
    List<FieldInfo> infos = new ArrayList<>();
    idInfo = field(ID, infos.size(), false, true, IndexOptions.DOCS, DocValuesType.BINARY);
    infos.add(idInfo);
    rawInfo = storeRaw ? field(RAW, infos.size(), false, false, IndexOptions.NONE, DocValuesType.NONE) : null;
    if (rawInfo != null) {
      infos.add(rawInfo);
    }
    contentsInfo = field(CONTENTS, infos.size(), storeDocvectors, false, IndexOptions.DOCS_AND_FREQS,
        DocValuesType.NONE);
    infos.add(contentsInfo);
    this.fieldInfos = new FieldInfos(infos.toArray(new FieldInfo[0]));
    this.contents = batch.contentsPostings();
    this.ids = batch.idPostings();
  }

  private static FieldInfo field(String name, int number, boolean vectors, boolean omitNorms, IndexOptions options,
                                 DocValuesType docValues) {
    return new FieldInfo(name, number, vectors, omitNorms, false, options, docValues, DocValuesSkipIndexType.NONE,
        -1, Collections.emptyMap(), 0, 0, 0, 0, VectorEncoding.FLOAT32, VectorSimilarityFunction.EUCLIDEAN, false,
        false);
  }

  @Override
  public FieldInfos getFieldInfos() {
    return fieldInfos;
  }

  @Override
  public Bits getLiveDocs() {
    return null;
  }

  @Override
  public LeafMetaData getMetaData() {
    return new LeafMetaData(Version.LATEST.major, Version.LATEST, null, false);
  }

  @Override
  public int numDocs() {
    return batch.docs();
  }

  @Override
  public int maxDoc() {
    return batch.docs();
  }

  @Override
  public CacheHelper getCoreCacheHelper() {
    return null;
  }

  @Override
  public CacheHelper getReaderCacheHelper() {
    return null;
  }

  @Override
  protected void doClose() {
  }

  @Override
  public PointsReader getPointsReader() {
    return null;
  }

  @Override
  public KnnVectorsReader getVectorReader() {
    return null;
  }

  @Override
  public FieldsProducer getPostingsReader() {
    return new FieldsProducer() {
      @Override
      public Iterator<String> iterator() {
        return List.of(ID, CONTENTS).iterator();
      }

      @Override
      public Terms terms(String field) {
        return ID.equals(field) ? ids : CONTENTS.equals(field) ? contents : null;
      }

      @Override
      public int size() {
        return 2;
      }

      @Override
      public void checkIntegrity() {
      }

      @Override
      public void close() {
      }
    };
  }

  @Override
  public NormsProducer getNormsReader() {
    return new NormsProducer() {
      @Override
      public NumericDocValues getNorms(FieldInfo field) {
        if (!CONTENTS.equals(field.name)) {
          return null;
        }
        return new NumericDocValues() {
          private int doc = -1;

          @Override
          public long longValue() {
            return batch.norm(doc);
          }

          @Override
          public boolean advanceExact(int target) {
            doc = target;
            return true;
          }

          @Override
          public int docID() {
            return doc;
          }

          @Override
          public int nextDoc() {
            return advance(doc + 1);
          }

          @Override
          public int advance(int target) {
            doc = target < batch.docs() ? target : NO_MORE_DOCS;
            return doc;
          }

          @Override
          public long cost() {
            return batch.docs();
          }
        };
      }

      @Override
      public void checkIntegrity() {
      }

      @Override
      public void close() {
      }
    };
  }

  @Override
  public DocValuesProducer getDocValuesReader() {
    return new DocValuesProducer() {
      @Override
      public BinaryDocValues getBinary(FieldInfo field) {
        return new BinaryDocValues() {
          private int doc = -1;

          @Override
          public BytesRef binaryValue() {
            return new BytesRef(batch.id(doc));
          }

          @Override
          public boolean advanceExact(int target) {
            doc = target;
            return true;
          }

          @Override
          public int docID() {
            return doc;
          }

          @Override
          public int nextDoc() {
            return advance(doc + 1);
          }

          @Override
          public int advance(int target) {
            doc = target < batch.docs() ? target : NO_MORE_DOCS;
            return doc;
          }

          @Override
          public long cost() {
            return batch.docs();
          }
        };
      }

      @Override
      public NumericDocValues getNumeric(FieldInfo field) {
        throw new UnsupportedOperationException(field.name + " has no numeric doc values");
      }

      @Override
      public SortedDocValues getSorted(FieldInfo field) {
        throw new UnsupportedOperationException(field.name + " has no sorted doc values");
      }

      @Override
      public SortedNumericDocValues getSortedNumeric(FieldInfo field) {
        throw new UnsupportedOperationException(field.name + " has no sorted numeric doc values");
      }

      @Override
      public SortedSetDocValues getSortedSet(FieldInfo field) {
        throw new UnsupportedOperationException(field.name + " has no sorted set doc values");
      }

      @Override
      public DocValuesSkipper getSkipper(FieldInfo field) {
        return null;
      }

      @Override
      public void checkIntegrity() {
      }

      @Override
      public void close() {
      }
    };
  }

  @Override
  public StoredFieldsReader getFieldsReader() {
    return new StoredFieldsReader() {
      @Override
      public void document(int doc, StoredFieldVisitor visitor) throws IOException {
        if (visit(visitor, idInfo, batch.id(doc))) {
          return;
        }
        String raw = batch.raw(doc);
        if (rawInfo != null && raw != null && visit(visitor, rawInfo, raw)) {
          return;
        }
        if (storeContents) {
          visit(visitor, contentsInfo, pseudoDocument(doc));
        }
      }

      @Override
      public StoredFieldsReader clone() {
        return this;
      }

      @Override
      public void checkIntegrity() {
      }

      @Override
      public void close() {
      }
    };
  }

  /** Visits one string field; true when the visitor wants no more fields. */
  private static boolean visit(StoredFieldVisitor visitor, FieldInfo info, String value) throws IOException {
    switch (visitor.needsField(info)) {
      case YES:
        visitor.stringField(info, value);
        return false;
      case NO:
        return false;
      default:
        return true;
    }
  }

  /** What {@code SpladeVectorCollection.Document.contents()} stores: each term repeated {@code impact} times. */
  private String pseudoDocument(int doc) {
    StringBuilder sb = new StringBuilder();
    for (int p = batch.docStart(doc); p < batch.docStart(doc + 1); p++) {
      String term = batch.sortedTerm(batch.termAt(p)).utf8ToString();
      for (int j = 0; j < batch.freqAt(p); j++) {
        sb.append(term).append(' ');
      }
    }
    return sb.toString();
  }

  @Override
  public TermVectorsReader getTermVectorsReader() {
    if (!contentsInfo.hasTermVectors()) {
      return null;
    }
    return new TermVectorsReader() {
      @Override
      public Fields get(int doc) {
        Terms vector = batch.termVector(doc);
        return new Fields() {
          @Override
          public Iterator<String> iterator() {
            return List.of(CONTENTS).iterator();
          }

          @Override
          public Terms terms(String field) {
            return CONTENTS.equals(field) ? vector : null;
          }

          @Override
          public int size() {
            return 1;
          }
        };
      }

      @Override
      public TermVectorsReader clone() {
        return this;
      }

      @Override
      public void checkIntegrity() {
      }

      @Override
      public void close() {
      }
    };
  }
}
