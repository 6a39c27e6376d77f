/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.index.generator;

import io.anserini.collection.SourceDocument;
import io.anserini.collection.SpladeVectorCollection;
import io.anserini.index.IndexCollection;
import io.anserini.splade.WeightedTermsTokenStream;
import org.apache.lucene.document.BinaryDocValuesField;
import org.apache.lucene.document.Document;
import org.apache.lucene.document.Field;
import org.apache.lucene.document.FieldType;
import org.apache.lucene.document.StoredField;
import org.apache.lucene.document.StringField;
import org.apache.lucene.index.IndexOptions;
import org.apache.lucene.util.BytesRef;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Lucene documents for impact search, with each term indexed once and its impact as the term frequency.
 *
 * <p>Fields are those of Anserini's DefaultLuceneDocumentGenerator, so that SimpleImpactSearcher and
 * {@code SearchCollection -impact -pretokenized} read the index the same way:
 * <ul>
 *   <li>{@code id}: StringField (stored) and BinaryDocValuesField (for tie-breaking by docid);</li>
 *   <li>{@code contents}: indexed DOCS_AND_FREQS with norms; with {@code -storeDocvectors}, term vectors (terms and
 *   frequencies; without positions, which custom term frequencies rule out); with {@code -storeContents}, the
 *   pseudo-document stored as Anserini would store it;</li>
 *   <li>{@code raw}: stored with {@code -storeRaw} (the input line).</li>
 * </ul>
 * The postings (document, frequency) and the field length are those of the pseudo-document that
 * JsonVectorCollection + DefaultLuceneDocumentGenerator would index, without ever building it.
 *
 * <p>Works best with {@link SpladeVectorCollection}; any other collection's pseudo-document ({@code contents()},
 * tokens separated by whitespace) is counted instead.
 */
public class SpladeImpactGenerator implements LuceneDocumentGenerator<SourceDocument> {
  public static final String ID = "id";
  public static final String CONTENTS = "contents";
  public static final String RAW = "raw";

  protected final IndexCollection.Args args;
  private final FieldType contentsType;

  public SpladeImpactGenerator() {
    this(new IndexCollection.Args());
  }

  public SpladeImpactGenerator(IndexCollection.Args args) {
    this.args = args;
    if (args.storePositions) {
      throw new IllegalArgumentException(
          "SpladeImpactGenerator cannot store positions (-storePositions): impacts are term frequencies");
    }
    FieldType type = new FieldType();
    type.setTokenized(true);
    type.setStored(false);
    type.setIndexOptions(IndexOptions.DOCS_AND_FREQS);
    if (args.storeDocvectors) {
      type.setStoreTermVectors(true);
    }
    type.freeze();
    this.contentsType = type;
  }

  @Override
  public Document createDocument(SourceDocument src) throws GeneratorException {
    String id = src.id();
    String[] terms;
    int[] impacts;
    if (src instanceof SpladeVectorCollection.Document d) {
      terms = d.terms();
      impacts = d.impacts();
    } else {
      String text;
      try {
        text = src.contents();
      } catch (RuntimeException e) {
        throw new InvalidDocumentException();
      }
      Map<String, Integer> counts = new LinkedHashMap<>();
      if (text != null) {
        for (String token : text.trim().split("\\s+")) {
          if (!token.isEmpty()) {
            counts.merge(token, 1, Integer::sum);
          }
        }
      }
      terms = counts.keySet().toArray(new String[0]);
      impacts = counts.values().stream().mapToInt(Integer::intValue).toArray();
    }
    if (terms.length == 0) {
      throw new EmptyDocumentException();
    }

    Document doc = new Document();
    doc.add(new StringField(ID, id, Field.Store.YES));
    doc.add(new BinaryDocValuesField(ID, new BytesRef(id)));
    if (args.storeRaw) {
      String raw = src.raw();
      if (raw != null) {
        doc.add(new StoredField(RAW, raw));
      }
    }
    doc.add(new Field(CONTENTS, new WeightedTermsTokenStream(terms, impacts, terms.length), contentsType));
    if (args.storeContents) {
      doc.add(new StoredField(CONTENTS, src.contents()));
    }
    return doc;
  }
}
