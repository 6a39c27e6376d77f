/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.anserini.collection.FileSegment;
import io.anserini.collection.JsonVectorCollection;
import io.anserini.collection.SpladeVectorCollection;
import io.anserini.index.IndexCollection;
import io.anserini.index.generator.EmptyDocumentException;
import io.anserini.index.generator.SpladeImpactGenerator;
import io.anserini.rerank.lib.ScoreTiesAdjusterReranker;
import io.anserini.search.ScoredDoc;
import io.anserini.search.ScoredDocs;
import io.anserini.search.SimpleImpactSearcher;
import io.anserini.search.MaxImpacts;
import io.anserini.search.IdCache;
import io.anserini.search.SpladeBatchSearcher;
import io.anserini.search.query.BagOfWordsQueryGenerator;
import io.anserini.search.similarity.ImpactSimilarity;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.core.WhitespaceAnalyzer;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.analysis.tokenattributes.TermFrequencyAttribute;
import org.apache.lucene.document.Document;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Sort;
import org.apache.lucene.search.SortField;
import org.apache.lucene.search.TopFieldDocs;
import org.apache.lucene.store.FSDirectory;

import java.io.BufferedReader;
import java.io.OutputStream;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;

/**
 * Unit tests of the Java extension, as a plain main (the Anserini fat jar has no JUnit): prints one line per test
 * and exits 1 if any failed.
 */
public final class SpladeTests {
  private static int failures = 0;
  private static int passed = 0;

  private SpladeTests() {
  }

  interface Body {
    void run() throws Exception;
  }

  private static void test(String name, Body body) {
    try {
      body.run();
      passed++;
      System.out.println("PASS " + name);
    } catch (Throwable t) {
      failures++;
      System.out.println("FAIL " + name + ": " + t);
      t.printStackTrace(System.out);
    }
  }

  private static void check(boolean condition, String message) {
    if (!condition) {
      throw new AssertionError(message);
    }
  }

  private static void checkEquals(Object expected, Object actual, String what) {
    if (expected == null ? actual != null : !expected.equals(actual)) {
      throw new AssertionError(what + ": expected <" + expected + "> but was <" + actual + ">");
    }
  }

  private static Map<String, Integer> asMap(SpladeVectorCollection.Document d) {
    Map<String, Integer> m = new LinkedHashMap<>();
    for (int i = 0; i < d.size(); i++) {
      m.put(d.terms()[i], d.impacts()[i]);
    }
    return m;
  }

  private static Map<String, Integer> tokens(Document doc) throws Exception {
    Map<String, Integer> m = new LinkedHashMap<>();
    try (TokenStream ts = doc.getField("contents").tokenStream(null, null)) {
      CharTermAttribute term = ts.addAttribute(CharTermAttribute.class);
      TermFrequencyAttribute freq = ts.addAttribute(TermFrequencyAttribute.class);
      ts.reset();
      while (ts.incrementToken()) {
        m.merge(term.toString(), freq.getTermFrequency(), Integer::sum);
      }
      ts.end();
    }
    return m;
  }

  /** Writes {@code docs} documents "d0", "d1", ... whose terms and impacts {@code vector} gives, with the generator. */
  private static void writeIndex(Path index, int docs, java.util.function.IntFunction<Map<String, Integer>> vector,
                                 int ramBufferBytes) throws Exception {
    IndexWriterConfig config = new IndexWriterConfig(new WhitespaceAnalyzer());
    config.setSimilarity(new ImpactSimilarity());
    config.setRAMBufferSizeMB(ramBufferBytes / 1048576.0);
    SpladeImpactGenerator generator = new SpladeImpactGenerator(new IndexCollection.Args());
    try (IndexWriter writer = new IndexWriter(FSDirectory.open(index), config)) {
      for (int d = 0; d < docs; d++) {
        Map<String, Integer> v = vector.apply(d);
        String[] terms = v.keySet().toArray(new String[0]);
        int[] impacts = v.values().stream().mapToInt(Integer::intValue).toArray();
        writer.addDocument(generator.createDocument(new SpladeVectorCollection.Document("d" + d, terms, impacts, null)));
      }
    }
  }

  /**
   * The same index as {@link #writeIndex} (SegmentWriterTests checks that the two writers agree), written by the
   * segments writer in batches of 500,000 documents: several times faster for millions of documents.
   */
  private static void writeIndexBySegments(Path index, int docs,
                                           java.util.function.IntFunction<Map<String, Integer>> vector)
      throws Exception {
    IndexWriterConfig config = new IndexWriterConfig(new WhitespaceAnalyzer());
    config.setSimilarity(new ImpactSimilarity());
    try (IndexWriter writer = new IndexWriter(FSDirectory.open(index), config)) {
      PostingsBatch batch = new PostingsBatch(new ImpactSimilarity(), false);
      for (int d = 0; d < docs; d++) {
        Map<String, Integer> v = vector.apply(d);
        batch.add("d" + d, v.keySet().toArray(new String[0]), v.values().stream().mapToInt(Integer::intValue).toArray(),
            null);
        if (batch.docs() == 500_000 || d == docs - 1) {
          batch.freeze();
          writer.addIndexes(new BatchCodecReader(batch, false, false, false));
          batch.clear();
        }
      }
    }
  }

  /** SimpleImpactSearcher's hits as docids and scores. */
  private static ScoredDocs fromScoredDoc(ScoredDoc[] hits) {
    ScoredDocs docs = new ScoredDocs();
    docs.docids = new String[hits.length];
    docs.scores = new float[hits.length];
    for (int i = 0; i < hits.length; i++) {
      docs.docids[i] = hits[i].docid;
      docs.scores[i] = hits[i].score;
    }
    return docs;
  }

  /** What SimpleImpactSearcher.search(Map, k) searches, straight through Lucene (the stored id of each hit). */
  private static ScoredDocs sortedLuceneSearch(IndexSearcher searcher, Map<String, Integer> query, int k)
      throws Exception {
    Map<String, Float> floats = new LinkedHashMap<>();
    query.forEach((term, weight) -> floats.put(term, weight.floatValue()));
    Sort sort = new Sort(SortField.FIELD_SCORE, new SortField("id", SortField.Type.STRING_VAL));
    TopFieldDocs top = searcher.search(new BagOfWordsQueryGenerator().buildQuery("contents", floats), k, sort, true);
    ScoredDocs docs = new ScoredDocs();
    int n = top.scoreDocs.length;
    docs.docids = new String[n];
    docs.scores = new float[n];
    docs.lucene_docids = new int[n];
    docs.lucene_documents = new Document[n];
    for (int i = 0; i < n; i++) {
      docs.lucene_docids[i] = top.scoreDocs[i].doc;
      docs.scores[i] = top.scoreDocs[i].score;
      docs.docids[i] = searcher.storedFields().document(top.scoreDocs[i].doc).get("id");
    }
    return new ScoreTiesAdjusterReranker<String>().rerank(docs, null);
  }

  private static String expectFormatError(Body body) throws Exception {
    try {
      body.run();
    } catch (SpladeVectorCollection.FormatException e) {
      return e.getMessage();
    }
    throw new AssertionError("expected a FormatException");
  }

  private static List<SpladeVectorCollection.Document> readAll(FileSegment<SpladeVectorCollection.Document> segment) {
    List<SpladeVectorCollection.Document> docs = new ArrayList<>();
    for (SpladeVectorCollection.Document d : segment) {
      docs.add(d);
    }
    return docs;
  }

  private static void deleteTree(Path root) throws Exception {
    if (root == null || !Files.exists(root)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  public static void main(String[] args) throws Exception {
    Path tmp = Files.createTempDirectory("splade-java-tests");
    try {
      run(tmp);
    } finally {
      deleteTree(tmp);
    }
    System.out.println((failures == 0 ? "OK " : "FAILED ") + passed + " passed, " + failures + " failed");
    System.exit(failures == 0 ? 0 : 1);
  }

  private static void run(Path tmp) throws Exception {
    test("quantize rounds half away from zero", () -> {
      checkEquals(1L, Quantizer.quantize(0.5, 1), "0.5");
      checkEquals(2L, Quantizer.quantize(1.5, 1), "1.5");
      checkEquals(3L, Quantizer.quantize(2.5, 1), "2.5");
      checkEquals(-1L, Quantizer.quantize(-0.5, 1), "-0.5");
      checkEquals(-3L, Quantizer.quantize(-2.5, 1), "-2.5");
      checkEquals(0L, Quantizer.quantize(0.49, 1), "0.49");
      checkEquals(0L, Quantizer.quantize(1e-9, 51.2), "tiny");
      checkEquals(0L, Quantizer.quantize(-1e-9, 51.2), "-tiny");
      checkEquals(19L, Quantizer.quantize(0.37, 51.2), "0.37*51.2");
      checkEquals(256L, Quantizer.quantize(5.0, 51.2), "5*51.2");
      checkEquals(42L, Quantizer.quantize(42, 1), "integer");
    });

    test("integer weights are taken as they are, zeros dropped", () -> {
      SpladeVectorCollection.Document d = SpladeVectorCollection.parseJson(
          "{\"id\": \"d1\", \"contents\": \"text\", \"vector\": {\"a\": 3, \"b\": 1, \"c\": 0, \"##ing\": 250}}",
          Double.NaN, "x.jsonl:1");
      checkEquals("d1", d.id(), "id");
      checkEquals(Map.of("a", 3, "b", 1, "##ing", 250), asMap(d), "vector");
      checkEquals("a a a b ", d.contents().substring(0, 8), "pseudo-document");
    });

    test("float weights are quantised with the scale", () -> {
      SpladeVectorCollection.Document d = SpladeVectorCollection.parseJson(
          "{\"id\": \"d2\", \"vector\": {\"a\": 0.5, \"b\": 0.015, \"c\": 0.001, \"d\": 2, \"e\": 0.025}}",
          100, "x.jsonl:1");
      // 0.015 * 100 = 1.5000000000000002 -> 2; 0.025 * 100 = 2.5 -> 3; 0.001 * 100 -> 0, dropped
      checkEquals(Map.of("a", 50, "b", 2, "d", 200, "e", 3), asMap(d), "vector");
      SpladeVectorCollection.Document half = SpladeVectorCollection.parseJson(
          "{\"id\": \"d3\", \"vector\": {\"a\": 0.5, \"b\": 1.5, \"c\": 2.5, \"d\": -0.5, \"e\": 1e-12}}",
          1, "x.jsonl:1");
      checkEquals(Map.of("a", 1, "b", 2, "c", 3), asMap(half), "halves away from zero, negatives and tiny dropped");
    });

    test("a fractional weight without a scale is an error, an integral float is not", () -> {
      String msg = expectFormatError(() -> SpladeVectorCollection.parseJson(
          "{\"id\": \"d\", \"vector\": {\"a\": 0.37}}", Double.NaN, "v.jsonl:7"));
      check(msg.startsWith("v.jsonl:7:"), msg);
      check(msg.contains("scale"), msg);
      SpladeVectorCollection.Document d = SpladeVectorCollection.parseJson(
          "{\"id\": \"d\", \"vector\": {\"a\": 3.0}}", Double.NaN, "v.jsonl:8");
      checkEquals(Map.of("a", 3), asMap(d), "3.0");
    });

    test("a repeated term keeps its last weight", () -> {
      SpladeVectorCollection.Document d = SpladeVectorCollection.parseJson(
          "{\"id\": \"d\", \"vector\": {\"a\": 3, \"b\": 2, \"a\": 5}}", Double.NaN, "x:1");
      checkEquals(Map.of("a", 5, "b", 2), asMap(d), "vector");
      SpladeVectorCollection.Document z = SpladeVectorCollection.parseJson(
          "{\"id\": \"d\", \"vector\": {\"a\": 3, \"b\": 2, \"a\": 0}}", Double.NaN, "x:1");
      checkEquals(Map.of("b", 2), asMap(z), "last weight 0 drops the term");
    });

    test("empty terms vanish and terms with spaces split, as in Anserini's pseudo-document", () -> {
      SpladeVectorCollection.Document d = SpladeVectorCollection.parseJson(
          "{\"id\": \"d\", \"vector\": {\"a b\": 2, \"\": 5, \"b\": 1, \" c\\t\": 3}}", Double.NaN, "x:1");
      checkEquals(Map.of("a", 2, "b", 3, "c", 3), asMap(d), "vector");
    });

    test("malformed lines name the file and line", () -> {
      String[][] cases = {
          {"{\"id\": \"d\", \"vector\": {\"a\": 1,}}", "malformed JSON"},
          {"{\"vector\": {\"a\": 1}}", "no \"id\""},
          {"{\"id\": \"d\"}", "no \"vector\""},
          {"{\"id\": \"d\", \"vector\": [1, 2]}", "\"vector\" must be an object"},
          {"{\"id\": \"d\", \"vector\": {\"a\": \"3\"}}", "must be a number"},
          {"{\"id\": {\"x\": 1}, \"vector\": {}}", "\"id\" must be a string"},
          {"[1, 2]", "expected a JSON object"},
          {"{\"id\": \"d\", \"vector\": {\"a\": 1}} {}", "after the JSON object"},
          {"{\"id\": \"d\", \"vector\": {\"a\": 1}} trailing", "malformed JSON"},
          {"{\"id\": \"d\", \"vector\": {\"a\": 99999999999}}", "above"},
          {"{\"id\": \"d\", \"vector\": {\"a\": 1", "malformed JSON"},
      };
      for (String[] c : cases) {
        String msg = expectFormatError(() -> SpladeVectorCollection.parseJson(c[0], Double.NaN, "f.jsonl:12"));
        check(msg.startsWith("f.jsonl:12: "), "message should start with the location: " + msg);
        check(msg.contains(c[1]), "message for " + c[0] + " should mention " + c[1] + ": " + msg);
      }
    });

    test("a segment reports the line number of a malformed line", () -> {
      Path dir = Files.createDirectories(tmp.resolve("bad"));
      Path file = dir.resolve("part-0.jsonl");
      Files.writeString(file, "{\"id\": \"a\", \"vector\": {\"x\": 1}}\n\n{\"id\": \"b\", \"vector\": {\"x\": 1,}}\n");
      SpladeVectorCollection collection = new SpladeVectorCollection(dir, Double.NaN);
      String msg = expectFormatError(() -> readAll(collection.createFileSegment(file)));
      check(msg.startsWith(file + ":3: "), msg);
    });

    test("the collection reads .jsonl, .jsonl.gz and a stream, skips encoding.json and hidden files", () -> {
      Path dir = Files.createDirectories(tmp.resolve("good"));
      Files.writeString(dir.resolve("a.jsonl"), "{\"id\": \"a\", \"vector\": {\"x\": 2, \"y\": 1}}\n");
      try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(dir.resolve("b.jsonl.gz")))) {
        out.write("{\"id\": \"b\", \"vector\": {\"x\": 0.26}}\n\n".getBytes(StandardCharsets.UTF_8));
      }
      Files.writeString(dir.resolve("encoding.json"), "{\n  \"scale\": 100\n}\n");
      Files.writeString(dir.resolve(".a.jsonl.tmp"), "garbage\n");
      Files.writeString(dir.resolve(".hidden.jsonl"), "garbage\n");
      SpladeVectorCollection collection = new SpladeVectorCollection(dir, 10);
      List<String> names = collection.getSegmentPaths().stream().map(p -> p.getFileName().toString()).sorted()
          .toList();
      checkEquals(List.of("a.jsonl", "b.jsonl.gz"), names, "segments");
      List<SpladeVectorCollection.Document> b = readAll(collection.createFileSegment(dir.resolve("b.jsonl.gz")));
      checkEquals(1, b.size(), "documents in b");
      checkEquals(Map.of("x", 3), asMap(b.get(0)), "0.26 * 10 -> 3");
      List<SpladeVectorCollection.Document> s = readAll(collection.createFileSegment(new BufferedReader(
          new StringReader("{\"id\": \"s\", \"vector\": {\"q\": 1.5}}\n"))));
      checkEquals(Map.of("q", 15), asMap(s.get(0)), "stream");
    });

    test("the generator writes id, contents with frequencies, and refuses empty documents", () -> {
      IndexCollection.Args args = new IndexCollection.Args();
      args.storeDocvectors = true;
      SpladeImpactGenerator generator = new SpladeImpactGenerator(args);
      Document doc = generator.createDocument(SpladeVectorCollection.parseJson(
          "{\"id\": \"d9\", \"vector\": {\"a\": 3}}", Double.NaN, "x:1"));
      checkEquals("d9", doc.get("id"), "stored id");
      check(doc.getField("contents") != null, "contents field");
      check(doc.getField("contents").fieldType().storeTermVectors(), "term vectors with -storeDocvectors");
      check(!doc.getField("contents").fieldType().storeTermVectorPositions(), "no term-vector positions");
      try {
        generator.createDocument(SpladeVectorCollection.parseJson(
            "{\"id\": \"e\", \"vector\": {\"a\": 0}}", Double.NaN, "x:1"));
        throw new AssertionError("expected EmptyDocumentException");
      } catch (EmptyDocumentException e) {
        // expected
      }
      IndexCollection.Args positions = new IndexCollection.Args();
      positions.storePositions = true;
      try {
        new SpladeImpactGenerator(positions);
        throw new AssertionError("expected -storePositions to be refused");
      } catch (IllegalArgumentException e) {
        check(e.getMessage().contains("positions"), e.getMessage());
      }
    });

    test("the token stream emits each term once with its impact as frequency", () -> {
      SpladeImpactGenerator generator = new SpladeImpactGenerator(new IndexCollection.Args());
      Document doc = generator.createDocument(SpladeVectorCollection.parseJson(
          "{\"id\": \"d\", \"vector\": {\"a\": 3, \"##b\": 1, \"c\": 250}}", Double.NaN, "x:1"));
      checkEquals(Map.of("a", 3, "##b", 1, "c", 250), tokens(doc), "tokens");
      // any other collection's pseudo-document is counted (e.g. JsonVectorCollection with this generator)
      JsonVectorCollection.Document stock = new JsonVectorCollection.Document(new ObjectMapper().readTree(
          "{\"id\": \"s\", \"contents\": \"\", \"vector\": {\"a\": 3, \"b\": 2.9, \"c\": 0}}"));
      checkEquals(Map.of("a", 3, "b", 2), tokens(generator.createDocument(stock)), "stock pseudo-document");
    });

    test("-storeContents and -storeRaw store what Anserini stores", () -> {
      IndexCollection.Args args = new IndexCollection.Args();
      args.storeContents = true;
      args.storeRaw = true;
      args.storeDocvectors = true;
      SpladeImpactGenerator generator = new SpladeImpactGenerator(args);
      Path index = tmp.resolve("stored");
      IndexWriterConfig config = new IndexWriterConfig(new WhitespaceAnalyzer());
      String line = "{\"id\": \"d1\", \"vector\": {\"a\": 2, \"b\": 1}}";
      try (IndexWriter writer = new IndexWriter(FSDirectory.open(index), config)) {
        writer.addDocument(generator.createDocument(SpladeVectorCollection.parseJson(line, Double.NaN, "x:1")));
        writer.addDocument(generator.createDocument(SpladeVectorCollection.parseJson(
            "{\"id\": \"d2\", \"vector\": {\"c\": 1}}", Double.NaN, "x:2")));
      }
      try (DirectoryReader reader = DirectoryReader.open(FSDirectory.open(index))) {
        Document stored = reader.storedFields().document(0);
        checkEquals("d1", stored.get("id"), "id");
        checkEquals("a a b ", stored.get("contents"), "contents");
        checkEquals(line, stored.get("raw"), "raw");
        checkEquals(4L, reader.getSumTotalTermFreq("contents"), "sum of frequencies");
      }
    });

    test("batch search equals SimpleImpactSearcher (scores, order, ties by docid)", () -> {
      Path index = tmp.resolve("index");
      Random random = new Random(7);
      String[] vocab = new String[40];
      for (int i = 0; i < vocab.length; i++) {
        vocab[i] = "w" + i;
      }
      IndexWriterConfig config = new IndexWriterConfig(new WhitespaceAnalyzer());
      config.setSimilarity(new ImpactSimilarity());
      SpladeImpactGenerator generator = new SpladeImpactGenerator(new IndexCollection.Args());
      try (IndexWriter writer = new IndexWriter(FSDirectory.open(index), config)) {
        for (int d = 0; d < 300; d++) {
          StringBuilder json = new StringBuilder("{\"id\": \"doc" + (299 - d) + "\", \"vector\": {");
          int n = 1 + random.nextInt(4);
          for (int t = 0; t < n; t++) {
            json.append(t == 0 ? "" : ", ").append('"').append(vocab[random.nextInt(vocab.length)]).append("\": ")
                .append(1 + random.nextInt(3));
          }
          json.append("}}");
          writer.addDocument(generator.createDocument(
              SpladeVectorCollection.parseJson(json.toString(), Double.NaN, "x:" + d)));
        }
      }
      List<String> qids = new ArrayList<>();
      List<Integer> offsets = new ArrayList<>(List.of(0));
      List<String> terms = new ArrayList<>();
      List<Double> weights = new ArrayList<>();
      List<Map<String, Integer>> expectedQueries = new ArrayList<>();
      for (int q = 0; q < 25; q++) {
        qids.add("q" + q);
        Map<String, Integer> query = new LinkedHashMap<>();
        int n = 1 + random.nextInt(3);
        for (int t = 0; t < n; t++) {
          String term = vocab[random.nextInt(vocab.length)];
          double w = random.nextInt(6) / 2.0; // 0, 0.5, 1, ... 2.5 -> quantised with scale 1
          if (query.containsKey(term)) {
            continue;
          }
          terms.add(term);
          weights.add(w);
          long quantised = Quantizer.quantize(w, 1.0);
          if (quantised > 0) {
            query.put(term, (int) quantised);
          } else {
            query.put(term, 0);
          }
        }
        query.values().removeIf(v -> v == 0);
        expectedQueries.add(query);
        offsets.add(terms.size());
      }
      try (SpladeBatchSearcher batch = new SpladeBatchSearcher(index.toString());
           SimpleImpactSearcher simple = new SimpleImpactSearcher(index.toString())) {
        for (int threads : new int[] {1, 3}) {
          SpladeBatchSearcher.Result result = batch.search(qids.toArray(new String[0]),
              offsets.stream().mapToInt(Integer::intValue).toArray(), terms.toArray(new String[0]),
              weights.stream().mapToDouble(Double::doubleValue).toArray(), 1.0, 50, threads);
          for (int q = 0; q < qids.size(); q++) {
            ScoredDoc[] expected = simple.search(expectedQueries.get(q), 50);
            int from = result.offsets[q];
            int to = result.offsets[q + 1];
            checkEquals(expected.length, to - from, qids.get(q) + " hits");
            for (int i = 0; i < expected.length; i++) {
              checkEquals(expected[i].docid, result.docids[from + i], qids.get(q) + " docid at rank " + (i + 1));
              checkEquals(expected[i].score, result.scores[from + i], qids.get(q) + " score at rank " + (i + 1));
            }
          }
        }
      }
    });

    test("batch search equals SimpleImpactSearcher with ties at the k-th hit, few matches and unknown terms", () -> {
      // Few terms and small weights: scores tie a lot, so the k-th hit falls inside runs of equal scores and the
      // "id" order (unsigned UTF-8 bytes, a document without an id first) decides which documents make it; ids in
      // an order unlike the docids; several segments, deleted documents. SimpleImpactSearcher fails on a hit
      // without an id, so the index with such documents is compared with its Lucene search only.
      String[] vocab = {"a", "b", "c", "d", "e"};
      String[] idStems = {"x", "X", "x10", "x9", "\u00e9", "\u00fc", "z", "\uE000", "\uD83D\uDE00", "", "a b"};
      List<Map<String, Integer>> queries = new ArrayList<>();
      queries.add(new LinkedHashMap<>(Map.of("a", 1)));
      queries.add(new LinkedHashMap<>(Map.of("a", 1, "b", 1)));
      queries.add(new LinkedHashMap<>(Map.of("a", 2, "c", 1, "e", 1)));
      queries.add(new LinkedHashMap<>(Map.of("b", 3, "d", 3, "unknown", 5)));
      queries.add(new LinkedHashMap<>(Map.of("a", 1, "b", 1, "c", 1, "d", 1, "e", 1)));
      queries.add(new LinkedHashMap<>(Map.of("unknown", 2, "missing", 1))); // no term in the index: no hit
      // 16777215 * 3 is not a float: ImpactSimilarity's float product rounds it (to 50331644); SimpleImpactSearcher
      // also writes the query as a string of repeated terms, too long here: Lucene's search only
      queries.add(new LinkedHashMap<>(Map.of("c", 16777215, "d", 123456789, "e", 1)));
      final int hugeQuery = 6;
      List<String> qids = new ArrayList<>();
      List<Integer> offsets = new ArrayList<>(List.of(0));
      List<String> terms = new ArrayList<>();
      List<Double> weights = new ArrayList<>();
      for (int q = 0; q < queries.size(); q++) {
        qids.add("q" + q);
        for (Map.Entry<String, Integer> e : queries.get(q).entrySet()) {
          terms.add(e.getKey());
          weights.add((double) e.getValue());
        }
        offsets.add(terms.size());
      }
      int comparedHits = 0;
      for (boolean someWithoutId : new boolean[] {false, true}) {
        Path index = tmp.resolve("ties-index-" + someWithoutId);
        Random random = new Random(11);
        List<String> ids = new ArrayList<>();
        for (int d = 0; d < 240; d++) {
          ids.add(idStems[d % idStems.length] + (d % 3 == 0 ? "" : Integer.toString(random.nextInt(1000))) + "-" + d);
        }
        java.util.Collections.shuffle(ids, random);
        IndexWriterConfig config = new IndexWriterConfig(new WhitespaceAnalyzer());
        config.setSimilarity(new ImpactSimilarity());
        config.setMaxBufferedDocs(50); // several segments
        config.setMergePolicy(org.apache.lucene.index.NoMergePolicy.INSTANCE);
        SpladeImpactGenerator generator = new SpladeImpactGenerator(new IndexCollection.Args());
        try (IndexWriter writer = new IndexWriter(FSDirectory.open(index), config)) {
          for (int d = 0; d < ids.size(); d++) {
            StringBuilder json = new StringBuilder("{\"id\": ")
                .append(new ObjectMapper().writeValueAsString(ids.get(d))).append(", \"vector\": {");
            int n = 1 + random.nextInt(3);
            for (int t = 0; t < n; t++) {
              json.append(t == 0 ? "" : ", ").append('"').append(vocab[random.nextInt(vocab.length)]).append("\": ")
                  .append(1 + random.nextInt(3));
            }
            json.append("}}");
            Document doc = generator.createDocument(SpladeVectorCollection.parseJson(json.toString(), Double.NaN,
                "x:" + d));
            if (someWithoutId && d % 23 == 5) {
              doc.removeFields("id");
            }
            writer.addDocument(doc);
          }
          for (int d = 0; d < ids.size(); d += 17) {
            writer.deleteDocuments(new org.apache.lucene.index.Term("id", ids.get(d)));
          }
        }
        try (SpladeBatchSearcher batch = new SpladeBatchSearcher(index.toString());
             SimpleImpactSearcher simple = new SimpleImpactSearcher(index.toString());
             DirectoryReader reader = DirectoryReader.open(FSDirectory.open(index))) {
          check(batch.numDocs() < ids.size(), "some documents are deleted");
          check(reader.leaves().size() > 1, "several segments");
          IndexSearcher lucene = new IndexSearcher(reader);
          lucene.setSimilarity(new ImpactSimilarity());
          for (int k : new int[] {1, 2, 5, 13, 40, 77, 150, 1000}) {
            for (int threads : new int[] {1, 2}) {
              SpladeBatchSearcher.Result result = batch.search(qids.toArray(new String[0]),
                  offsets.stream().mapToInt(Integer::intValue).toArray(), terms.toArray(new String[0]),
                  weights.stream().mapToDouble(Double::doubleValue).toArray(), 1.0, k, threads);
              for (int q = 0; q < qids.size(); q++) {
                ScoredDocs expected = someWithoutId || q == hugeQuery ? sortedLuceneSearch(lucene, queries.get(q), k)
                    : fromScoredDoc(simple.search(queries.get(q), k));
                int from = result.offsets[q];
                int to = result.offsets[q + 1];
                String what = qids.get(q) + " k=" + k + " threads=" + threads + " someWithoutId=" + someWithoutId;
                checkEquals(expected.docids.length, to - from, what + " hits");
                for (int i = 0; i < expected.docids.length; i++) {
                  checkEquals(expected.docids[i], result.docids[from + i], what + " docid at rank " + (i + 1));
                  checkEquals(expected.scores[i], result.scores[from + i], what + " score at rank " + (i + 1));
                }
                comparedHits += expected.docids.length;
              }
              checkEquals(0, result.offsets[6] - result.offsets[5], "no hit for unknown terms, k=" + k);
            }
          }
          // the test means something: k = 1000 is beyond the matches, smaller k cut runs of equal scores (equal
          // before Anserini's tie adjustment lowers each tie by 1e-6), and the huge weights were rounded
          for (int q = 0; q < 5; q++) {
            ScoredDocs all = sortedLuceneSearch(lucene, queries.get(q), 1000);
            check(all.scores.length > 40 && all.scores.length <= batch.numDocs(), qids.get(q) + " matches "
                + all.scores.length);
            int cutTies = 0;
            for (int k : new int[] {1, 2, 5, 13, 40}) {
              if (Math.round(all.scores[k - 1]) == Math.round(all.scores[k])) {
                cutTies++;
              }
            }
            check(cutTies >= 3, qids.get(q) + ": only " + cutTies + " cuts inside ties");
            if (!someWithoutId) {
              check(Arrays.equals(all.docids, fromScoredDoc(simple.search(queries.get(q), 1000)).docids),
                  "the Lucene search is SimpleImpactSearcher's");
            }
          }
          boolean rounded = false;
          for (float score : sortedLuceneSearch(lucene, queries.get(hugeQuery), 1000).scores) {
            rounded |= (long) score % 16777215 != 0 && (long) score % 123456789 != 0;
          }
          check(rounded, "some score of the huge weights is not a plain integer sum");
          if (someWithoutId) {
            boolean hitWithoutId = false;
            for (ScoredDocs docs = sortedLuceneSearch(lucene, queries.get(4), 1000); ; ) {
              for (String id : docs.docids) {
                hitWithoutId |= id == null;
              }
              break;
            }
            check(hitWithoutId, "a hit without an id");
          }
        }
      }
      check(comparedHits > 4000, "compared " + comparedHits + " hits");
    });

    test("the largest impact of each term from Lucene's impacts equals a scan of its postings", () -> {
      // 3,000 documents over 40 terms, impacts 1..200 (a few large ones placed at random): terms of 1 to ~3,000
      // postings, so single incomplete blocks, full 256-posting blocks and the tail after them
      Path index = tmp.resolve("max-impacts-index");
      Random random = new Random(5);
      String[] vocab = new String[40];
      for (int t = 0; t < vocab.length; t++) {
        vocab[t] = "m" + t;
      }
      writeIndex(index, 3000, d -> {
        int n = 1 + random.nextInt(12);
        Map<String, Integer> doc = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) {
          int t = (int) Math.min(vocab.length - 1, Math.abs(random.nextGaussian()) * 12);
          doc.put(vocab[t], random.nextInt(50) == 0 ? 100 + random.nextInt(101) : 1 + random.nextInt(40));
        }
        return doc;
      }, 256 << 20);
      int checked = 0;
      try (DirectoryReader reader = DirectoryReader.open(FSDirectory.open(index))) {
        for (org.apache.lucene.index.LeafReaderContext leaf : reader.leaves()) {
          org.apache.lucene.index.TermsEnum terms = leaf.reader().terms("contents").iterator();
          org.apache.lucene.index.TermsEnum scan = leaf.reader().terms("contents").iterator();
          for (org.apache.lucene.util.BytesRef term = terms.next(); term != null; term = terms.next()) {
            check(scan.seekExact(term), "term");
            checkEquals(MaxImpacts.scan(scan), MaxImpacts.compute(terms), term.utf8ToString());
            checked += terms.docFreq() > 600 ? 1 : 0;
          }
        }
      }
      check(checked >= 3, "terms over two blocks: " + checked);
    });

    test("search and id cache above the old 4M-document limit of the id cache", () -> {
      // Many one-term documents (Integer.getInteger("splade.test.bigDocs"), default 4.5M): scores tie in long runs
      // that the ids decide; the cache holds every id; a cache limit too small falls back to the doc values
      int docs = Integer.getInteger("splade.test.bigDocs", 4_500_000);
      Path index = tmp.resolve("big-index");
      String[] vocab = {"a", "b", "c", "d", "e"};
      writeIndexBySegments(index, docs, d -> {
        Map<String, Integer> doc = new LinkedHashMap<>();
        doc.put(d % 100_003 == 7 ? "rare" : vocab[(int) ((d * 2654435761L) % vocab.length)],
            1 + (int) ((d * 40503L) % 9));
        return doc;
      });
      List<Map<String, Integer>> queries = List.of(Map.of("a", 1), Map.of("b", 2, "c", 1), Map.of("rare", 3, "d", 1),
          Map.of("rare", 50, "e", 1));
      List<String> qids = new ArrayList<>();
      List<String> terms = new ArrayList<>();
      List<Double> weights = new ArrayList<>();
      int[] offsets = new int[queries.size() + 1];
      for (int q = 0; q < queries.size(); q++) {
        qids.add("q" + q);
        for (Map.Entry<String, Integer> e : new java.util.TreeMap<>(queries.get(q)).entrySet()) {
          terms.add(e.getKey());
          weights.add((double) e.getValue());
        }
        offsets[q + 1] = terms.size();
      }
      try (SimpleImpactSearcher simple = new SimpleImpactSearcher(index.toString())) {
        checkEquals(docs, simple.get_total_num_docs(), "documents");
        for (int idCacheBytes : new int[] {IdCache.DEFAULT_MAX_BYTES, 1 << 20}) {
          try (SpladeBatchSearcher batch = new SpladeBatchSearcher(index.toString(), "contents", idCacheBytes)) {
            for (int k : new int[] {10, 1000}) {
              SpladeBatchSearcher.Result result = batch.search(qids.toArray(new String[0]), offsets,
                  terms.toArray(new String[0]), weights.stream().mapToDouble(Double::doubleValue).toArray(), 1.0, k,
                  2);
              for (int q = 0; q < queries.size(); q++) {
                ScoredDoc[] expected = simple.search(queries.get(q), k);
                String what = "q" + q + " k=" + k + " id cache bytes " + idCacheBytes;
                checkEquals(k, expected.length, what + " hits");
                checkEquals(expected.length, result.offsets[q + 1] - result.offsets[q], what + " hits");
                for (int i = 0; i < expected.length; i++) {
                  checkEquals(expected[i].docid, result.docids[result.offsets[q] + i], what + " rank " + (i + 1));
                  checkEquals(expected[i].score, result.scores[result.offsets[q] + i], what + " score " + (i + 1));
                }
              }
            }
            checkEquals(idCacheBytes == IdCache.DEFAULT_MAX_BYTES, batch.idCacheSize() == docs,
                "the id cache holds every document (or none under the small limit): " + batch.idCacheSize());
          }
        }
      }
    });

    io.anserini.search.CompactSearchTests.tests(tmp).forEach((name, body) -> test(name, body::run));
    SegmentWriterTests.tests(tmp).forEach((name, body) -> test(name, body::run));

    test("batch search validates its arrays", () -> {
      Path index = tmp.resolve("index");
      try (SpladeBatchSearcher batch = new SpladeBatchSearcher(index.toString())) {
        try {
          batch.search(new String[] {"q"}, new int[] {0, 2}, new String[] {"a"}, new double[] {1}, 1, 10, 1);
          throw new AssertionError("expected IllegalArgumentException");
        } catch (IllegalArgumentException e) {
          check(e.getMessage().contains("offsets"), e.getMessage());
        }
        SpladeBatchSearcher.Result empty = batch.search(new String[] {"q"}, new int[] {0, 1}, new String[] {"a"},
            new double[] {0.2}, 1, 10, 1);
        checkEquals(0, empty.size(), "a query whose weights all round to 0 finds nothing");
        checkEquals(Arrays.toString(new int[] {0, 0}), Arrays.toString(empty.offsets), "offsets");
      }
    });
  }
}
