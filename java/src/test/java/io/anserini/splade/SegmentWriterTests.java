/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

import io.anserini.index.IndexCollection;
import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.BytesRef;
import org.kohsuke.args4j.CmdLineParser;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

/**
 * Tests of the segments writer ({@link SegmentIndexer}): on the same shards it writes the index that IndexCollection
 * with SpladeImpactGenerator writes (the documents writer), run by SpladeTests' main.
 */
final class SegmentWriterTests {
  private SegmentWriterTests() {
  }

  interface Check {
    void run() throws Exception;
  }

  private static void check(boolean condition, String message) {
    if (!condition) {
      throw new AssertionError(message);
    }
  }

  /** The tests by name. */
  static Map<String, Check> tests(Path tmp) {
    Map<String, Check> tests = new LinkedHashMap<>();
    tests.put("segments writer: the index of the documents writer (empty doc, one term, impacts > 255, unicode)",
        () -> compareWriters(tmp.resolve("seg-edge"), edgeCases(), 1_000_000, 1_000_000, 2, List.of("-storeDocvectors")));
    tests.put("segments writer: many batches of 7 documents, 2 threads, -storeRaw -storeContents", () ->
        compareWriters(tmp.resolve("seg-many"), randomCorpus(400, 3), 7, 1_000_000, 2,
            List.of("-storeDocvectors", "-storeRaw", "-storeContents")));
    tests.put("segments writer: batches cut by postings, no term vectors, -optimize", () ->
        compareWriters(tmp.resolve("seg-postings"), randomCorpus(300, 2), 1_000_000, 500, 1, List.of("-optimize")));
    return tests;
  }

  /** Shards of JSON lines: an empty document, a one-term one, impacts > 255 and unicode ids and terms. */
  private static List<List<String>> edgeCases() {
    List<String> a = new ArrayList<>();
    a.add("{\"id\": \"empty\", \"vector\": {\"a\": 0}}");
    a.add("{\"id\": \"one\", \"vector\": {\"solo\": 1}}");
    a.add("{\"id\": \"big\", \"vector\": {\"a\": 256, \"b\": 70000, \"c\": 255, \"solo\": 3}}");
    a.add("{\"id\": \"δοκ-1\", \"vector\": {\"é\": 2, \"\uFB01\": 5, \"😀\": 7, \"a\": 1}}");
    a.add("{\"id\": \"文档🙂\", \"vector\": {\"😀\": 1, \"z\": 300, \"e\": 9}}");
    List<String> b = new ArrayList<>();
    b.add("{\"id\": \"split\", \"vector\": {\"x y\": 4, \"\": 3, \"x\": 1}}");
    b.add("{\"id\": \"one\", \"vector\": {\"dup\": 2}}");
    b.add("{\"id\": \"float-int\", \"vector\": {\"q\": 12.0, \"r\": 1}}");
    return List.of(a, b);
  }

  /** {@code docs} random documents in {@code shards} shards: 1-40 of 200 terms, impacts 1-400. */
  private static List<List<String>> randomCorpus(int docs, int shards) {
    Random random = new Random(29);
    List<List<String>> out = new ArrayList<>();
    for (int s = 0; s < shards; s++) {
      out.add(new ArrayList<>());
    }
    for (int d = 0; d < docs; d++) {
      StringBuilder sb = new StringBuilder("{\"id\": \"doc" + d + "\", \"vector\": {");
      int n = 1 + random.nextInt(40);
      for (int i = 0; i < n; i++) {
        sb.append(i == 0 ? "" : ", ").append("\"t").append(random.nextInt(200)).append("\": ")
            .append(random.nextInt(401));
      }
      out.get(d % shards).add(sb.append("}}").toString());
    }
    return out;
  }

  private static IndexCollection.Args args(Path input, Path index, int threads, List<String> options)
      throws Exception {
    List<String> argv = new ArrayList<>(List.of("-collection", "SpladeVectorCollection", "-generator",
        "SpladeImpactGenerator", "-input", input.toString(), "-index", index.toString(), "-threads",
        String.valueOf(threads), "-impact", "-pretokenized"));
    argv.addAll(options);
    IndexCollection.Args args = new IndexCollection.Args();
    new CmdLineParser(args).parseArgument(argv.toArray(new String[0]));
    return args;
  }

  private static void compareWriters(Path root, List<List<String>> shards, int batchDocs, int batchPostings,
                                     int threads, List<String> options) throws Exception {
    Path input = root.resolve("vectors");
    Files.createDirectories(input);
    for (int s = 0; s < shards.size(); s++) {
      Files.write(input.resolve("part-" + s + ".jsonl"), shards.get(s), StandardCharsets.UTF_8);
    }
    Path documents = root.resolve("documents");
    Path segments = root.resolve("segments");
    IndexCollection indexer = new IndexCollection(args(input, documents, threads, options));
    indexer.run();
    System.setProperty(SegmentIndexer.BATCH_DOCS_PROPERTY, String.valueOf(batchDocs));
    System.setProperty(SegmentIndexer.BATCH_POSTINGS_PROPERTY, String.valueOf(batchPostings));
    SegmentIndexer writer;
    try {
      writer = new SegmentIndexer(args(input, segments, threads, options));
    } finally {
      System.clearProperty(SegmentIndexer.BATCH_DOCS_PROPERTY);
      System.clearProperty(SegmentIndexer.BATCH_POSTINGS_PROPERTY);
    }
    writer.run();
    check(writer.counters().indexed.get() == indexer.getCounters().indexed.get(), "indexed counts differ: "
        + writer.counters().indexed.get() + " vs " + indexer.getCounters().indexed.get());
    check(writer.counters().empty.get() == indexer.getCounters().empty.get(), "empty counts differ");
    List<String> diffs = IndexCompare.compare(documents.toString(), segments.toString(), "contents", 10);
    check(diffs.isEmpty(), "postings, norms or term vectors differ: " + diffs);
    Map<String, String> a = describe(documents);
    Map<String, String> b = describe(segments);
    for (String key : a.keySet()) {
      check(a.get(key).equals(b.get(key)), key + " differs:\n documents: " + a.get(key) + "\n segments:  "
          + b.get(key));
    }
    check(a.keySet().equals(b.keySet()), "parts differ: " + a.keySet() + " vs " + b.keySet());
    if (batchDocs < 100 && !options.contains("-optimize")) {
      try (DirectoryReader reader = DirectoryReader.open(FSDirectory.open(segments))) {
        check(reader.leaves().size() > 3, "expected many segments, got " + reader.leaves().size());
      }
    }
  }

  /**
   * What must be equal, independent of the order of documents and segments: field infos, statistics of every
   * field, each document's stored fields and id doc value (by id), and the id field's postings.
   */
  private static Map<String, String> describe(Path index) throws Exception {
    Map<String, String> out = new TreeMap<>();
    try (DirectoryReader reader = DirectoryReader.open(FSDirectory.open(index))) {
      List<String> fields = new ArrayList<>();
      List<String> stored = new ArrayList<>();
      List<String> idPostings = new ArrayList<>();
      for (LeafReaderContext ctx : reader.leaves()) {
        LeafReader leaf = ctx.reader();
        for (FieldInfo fi : leaf.getFieldInfos()) {
          fields.add(fi.name + " #" + fi.number + " " + fi.getIndexOptions() + " dv=" + fi.getDocValuesType()
              + " norms=" + fi.hasNorms() + " omitNorms=" + fi.omitsNorms() + " vectors=" + fi.hasTermVectors()
              + " payloads=" + fi.hasPayloads() + " points=" + fi.getPointDimensionCount()
              + " knn=" + fi.getVectorDimension() + " skip=" + fi.docValuesSkipIndexType());
        }
        StoredFields docs = leaf.storedFields();
        BinaryDocValues dv = leaf.getBinaryDocValues("id");
        String[] ids = new String[leaf.maxDoc()];
        for (int d = 0; d < leaf.maxDoc(); d++) {
          StringBuilder sb = new StringBuilder();
          docs.document(d).getFields().forEach(f -> sb.append(f.name()).append('=').append(f.stringValue())
              .append(" | "));
          check(dv.advanceExact(d), "doc " + d + " has no id doc value");
          ids[d] = docs.document(d).get("id");
          sb.append("dv=").append(dv.binaryValue().utf8ToString());
          stored.add(sb.toString());
        }
        Terms terms = leaf.terms("id");
        TermsEnum te = terms.iterator();
        BytesRef term;
        PostingsEnum pe = null;
        while ((term = te.next()) != null) {
          pe = te.postings(pe, PostingsEnum.FREQS);
          int d;
          while ((d = pe.nextDoc()) != DocIdSetIterator.NO_MORE_DOCS) {
            idPostings.add(term.utf8ToString() + " -> " + ids[d] + " freq " + pe.freq());
          }
        }
      }
      Collections.sort(stored);
      Collections.sort(idPostings);
      out.put("field infos", String.join("; ", new java.util.TreeSet<>(fields)));
      out.put("stored fields and doc values", String.join("\n", stored));
      out.put("id postings", String.join("\n", idPostings));
      for (String field : List.of("id", "contents")) {
        out.put("stats of " + field, "docCount=" + reader.getDocCount(field) + " sumTotalTermFreq="
            + reader.getSumTotalTermFreq(field) + " sumDocFreq=" + reader.getSumDocFreq(field) + " maxDoc="
            + reader.maxDoc() + " numDocs=" + reader.numDocs());
      }
    }
    return out;
  }
}
