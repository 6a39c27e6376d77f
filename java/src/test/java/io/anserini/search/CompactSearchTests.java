/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.search;

import io.anserini.collection.SpladeVectorCollection;
import io.anserini.index.IndexCollection;
import io.anserini.index.generator.SpladeImpactGenerator;
import io.anserini.search.similarity.ImpactSimilarity;
import org.apache.lucene.analysis.core.WhitespaceAnalyzer;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.NoMergePolicy;
import org.apache.lucene.index.Term;
import org.apache.lucene.store.FSDirectory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Tests of the compact impact postings and their search ({@link CompactImpacts}, {@link CompactImpactSearch}) and of
 * {@link TopHits}' selection, run by SpladeTests' main (package-private classes, hence this package).
 */
public final class CompactSearchTests {
  /** A test body. */
  public interface Check {
    void run() throws Exception;
  }

  private static final int DOCS = 2000;
  /** Windows of 64 docids: the test index spans about 30 windows per segment. */
  private static final int SHIFT = 6;

  private CompactSearchTests() {
  }

  private static void check(boolean condition, String message) {
    if (!condition) {
      throw new AssertionError(message);
    }
  }

  /**
   * 2,000 documents in 3 segments, every 13th deleted: 30 terms of skewed frequencies and impacts 1-40 (ties), the
   * term "lonely" only in docs 130-180 (one window of 64), "wide" with impacts up to 1,000 (chars, not bytes).
   */
  private static void writeIndex(Path index) throws Exception {
    IndexWriterConfig config = new IndexWriterConfig(new WhitespaceAnalyzer());
    config.setSimilarity(new ImpactSimilarity());
    config.setMaxBufferedDocs(700);
    config.setMergePolicy(NoMergePolicy.INSTANCE);
    SpladeImpactGenerator generator = new SpladeImpactGenerator(new IndexCollection.Args());
    Random random = new Random(17);
    try (IndexWriter writer = new IndexWriter(FSDirectory.open(index), config)) {
      for (int d = 0; d < DOCS; d++) {
        Map<String, Integer> v = new LinkedHashMap<>();
        int n = 1 + random.nextInt(8);
        for (int i = 0; i < n; i++) {
          v.put("t" + (int) Math.min(29, Math.abs(random.nextGaussian()) * 10), 1 + random.nextInt(40));
        }
        if (d >= 130 && d <= 180 && d % 3 == 0) {
          v.put("lonely", 1 + random.nextInt(5));
        }
        if (d % 7 == 0) {
          v.put("wide", 1 + random.nextInt(1000));
        }
        writer.addDocument(generator.createDocument(new SpladeVectorCollection.Document("d" + d,
            v.keySet().toArray(new String[0]), v.values().stream().mapToInt(Integer::intValue).toArray(), null)));
      }
      for (int d = 0; d < DOCS; d += 13) {
        writer.deleteDocuments(new Term("id", "d" + d));
      }
    }
  }

  private static List<Map<String, Integer>> queries() {
    Random random = new Random(23);
    List<Map<String, Integer>> queries = new ArrayList<>();
    for (int q = 0; q < 20; q++) {
      Map<String, Integer> query = new LinkedHashMap<>();
      int n = 2 + random.nextInt(7);
      for (int i = 0; i < n; i++) {
        query.put("t" + random.nextInt(30), 1 + random.nextInt(50));
      }
      queries.add(query);
    }
    queries.add(Map.of("lonely", 3));
    queries.add(Map.of("lonely", 2, "t25", 1));
    queries.add(Map.of("wide", 7, "t0", 3, "t1", 2));
    queries.add(Map.of("unknown", 4));
    return queries;
  }

  /** The batch searcher's hits of {@code query} equal SimpleImpactSearcher's (docids, scores, order). */
  private static void checkSame(SpladeBatchSearcher batch, SimpleImpactSearcher simple, Map<String, Integer> query,
                                int k, String what) throws Exception {
    ScoredDoc[] expected = simple.search(query, k);
    ScoredDocs got = batch.searchOne(query, k);
    check(expected.length == got.docids.length, what + ": " + got.docids.length + " hits, expected "
        + expected.length);
    for (int i = 0; i < expected.length; i++) {
      check(expected[i].docid.equals(got.docids[i]) && expected[i].score == got.scores[i],
          what + " rank " + (i + 1) + ": " + got.docids[i] + " " + got.scores[i] + ", expected " + expected[i].docid
              + " " + expected[i].score);
    }
  }

  /**
   * Compares the compact search (windows of 2^shift docids, blocks of 2^blockShift: block-max pruning up to k = 100,
   * windows above) and the search on Lucene's postings with SimpleImpactSearcher on every query at several k;
   * returns how many queries' 50th hit ties with the 51st.
   */
  private static int compareWithSimple(Path index, int shift, int blockShift, int giveUp) throws Exception {
    try (DirectoryReader reader = DirectoryReader.open(FSDirectory.open(index))) {
      check(reader.numDocs() < DOCS && reader.leaves().size() == 3, "3 segments with deletions");
    }
    int tiesAtK = 0;
    try (SpladeBatchSearcher batch = new SpladeBatchSearcher(index.toString(), "contents",
        IdCache.DEFAULT_MAX_BYTES, 1L << 30, shift, blockShift);
         SpladeBatchSearcher lucene = new SpladeBatchSearcher(index.toString(), "contents",
             IdCache.DEFAULT_MAX_BYTES, 0);
         SimpleImpactSearcher simple = new SimpleImpactSearcher(index.toString())) {
      List<Map<String, Integer>> queries = queries();
      batch.blockMaxPolicy(100, giveUp, 2);
      for (int k : new int[] {1, 7, 50, 200, 1000}) {
        for (int q = 0; q < queries.size(); q++) {
          checkSame(batch, simple, queries.get(q), k, "compact windows 2^" + shift + " blocks 2^" + blockShift
              + " giving up past 1/" + giveUp + " q" + q + " k=" + k);
          checkSame(lucene, simple, queries.get(q), k, "Lucene's postings q" + q + " k=" + k);
        }
      }
      for (Map<String, Integer> query : queries) {
        ScoredDoc[] all = simple.search(query, DOCS);
        tiesAtK += all.length > 50 && Math.round(all[49].score) == Math.round(all[50].score) ? 1 : 0;
      }
      check(simple.search(queries.get(20), 1000).length > 5, "the one-window term matches");
      check(batch.compactBytes() > 0 && lucene.compactBytes() == 0, "the compact postings are used: "
          + batch.compactBytes());
      long[] blocks = batch.blockMaxCounts();
      check(blocks[1] > 0 && blocks[1] < blocks[0], "block-max pruning evaluated some blocks, not all: "
          + Arrays.toString(blocks));
      check(giveUp == 1 ? blocks[3] == 0 : blocks[3] > 0 && blocks[3] < blocks[2], "gave up on some segments"
          + " (the rest by windows) only if allowed to: " + Arrays.toString(blocks));
    }
    return tiesAtK;
  }

  /** The tests, by name, on an index written under {@code tmp}. */
  public static Map<String, Check> tests(Path tmp) {
    Path index = tmp.resolve("compact-index");
    Map<String, Check> tests = new LinkedHashMap<>();
    tests.put("compact and block-max search equal SimpleImpactSearcher across windows and blocks, with deletions,"
        + " ties at k, k above the matches, absent terms, wide impacts", () -> {
      writeIndex(index);
      int tiesAtK = 0;
      // windows smaller and larger than CompactImpactSearch.CHUNK; blocks of 8 docids (several per window, edges
      // inside windows), as large as the window (one per window), and of 64
      // block-max search that never gives up, or gives up past 1/8 of the blocks (the rest by windows)
      // (and a window larger than a segment)
      for (int[] shifts : new int[][] {{SHIFT, 3, 1}, {SHIFT, SHIFT, 1}, {9, 6, 1}, {SHIFT, 3, 8}, {12, 3, 8}}) {
        tiesAtK += compareWithSimple(index, shifts[0], shifts[1], shifts[2]);
      }
      check(tiesAtK >= 25, "queries whose 50th hit ties with the 51st: " + tiesAtK);
    });

    tests.put("block-max search keeps docid order among hits of equal score and equal id", () -> {
      // 40 documents whose ids repeat (5 distinct), all scoring the same on "a"; "b" only in docs 15 and 31 lifts
      // the bounds of blocks 1 and 3 (8 docids a block), so the block-max search offers them before blocks 0, 2
      // and 4, out of docid order; Lucene orders hits of equal score and id by docid
      Path dups = tmp.resolve("duplicate-ids");
      IndexWriterConfig config = new IndexWriterConfig(new WhitespaceAnalyzer());
      config.setSimilarity(new ImpactSimilarity());
      SpladeImpactGenerator generator = new SpladeImpactGenerator(new IndexCollection.Args());
      try (IndexWriter writer = new IndexWriter(FSDirectory.open(dups), config)) {
        for (int d = 0; d < 40; d++) {
          boolean b = d % 16 == 15;
          writer.addDocument(generator.createDocument(new SpladeVectorCollection.Document("dup" + (d % 5),
              b ? new String[] {"a", "b"} : new String[] {"a"}, b ? new int[] {2, 5} : new int[] {2}, null)));
        }
      }
      try (SpladeBatchSearcher batch = new SpladeBatchSearcher(dups.toString(), "contents",
          IdCache.DEFAULT_MAX_BYTES, 1L << 30, SHIFT, 3);
           SimpleImpactSearcher simple = new SimpleImpactSearcher(dups.toString())) {
        batch.blockMaxPolicy(100, 1, 0);
        for (Map<String, Integer> query : List.of(Map.of("a", 1), Map.of("a", 1, "b", 1))) {
          for (int k : new int[] {1, 10, 50}) {
            ScoredDoc[] expected = simple.search(query, k);
            ScoredDocs got = batch.searchOne(query, k);
            int[] expectedDocs = Arrays.stream(expected).mapToInt(h -> h.lucene_docid).toArray();
            check(Arrays.equals(expectedDocs, got.lucene_docids), query + " k=" + k + ": "
                + Arrays.toString(got.lucene_docids) + ", expected " + Arrays.toString(expectedDocs));
          }
        }
        check(batch.blockMaxCounts()[1] > 1 && batch.blockMaxCounts()[3] == 0, "the block-max search ran");
      }
    });

    tests.put("compact postings over their memory budget leave the other terms to Lucene's postings", () -> {
      long budget = 6_000; // a few terms' postings
      try (SpladeBatchSearcher batch = new SpladeBatchSearcher(index.toString(), "contents",
          IdCache.DEFAULT_MAX_BYTES, budget, SHIFT, 3);
           SimpleImpactSearcher simple = new SimpleImpactSearcher(index.toString())) {
        List<Map<String, Integer>> queries = queries();
        for (int k : new int[] {10, 1000}) {
          for (int q = 0; q < queries.size(); q++) {
            checkSame(batch, simple, queries.get(q), k, "budget q" + q + " k=" + k);
          }
        }
        check(batch.compactBytes() > 0 && batch.compactBytes() <= budget, "within the budget: "
            + batch.compactBytes());
      }
    });

    tests.put("threads searching the same new terms copy each once per segment, with SimpleImpactSearcher's hits",
        () -> {
      // every query term is new to the searcher and shared by several queries: the threads race to look it up
      List<Map<String, Integer>> queries = new ArrayList<>(queries());
      queries.addAll(queries());
      int n = queries.size();
      String[] qids = new String[n];
      int[] offsets = new int[n + 1];
      List<String> terms = new ArrayList<>();
      List<Double> weights = new ArrayList<>();
      for (int q = 0; q < n; q++) {
        qids[q] = "q" + q;
        for (Map.Entry<String, Integer> e : queries.get(q).entrySet()) {
          terms.add(e.getKey());
          weights.add(e.getValue().doubleValue());
        }
        offsets[q + 1] = terms.size();
      }
      String[] termArray = terms.toArray(new String[0]);
      double[] weightArray = weights.stream().mapToDouble(Double::doubleValue).toArray();
      try (SimpleImpactSearcher simple = new SimpleImpactSearcher(index.toString())) {
        long serialBytes;
        try (SpladeBatchSearcher serial = new SpladeBatchSearcher(index.toString(), "contents",
            IdCache.DEFAULT_MAX_BYTES, 1L << 30, SHIFT, SHIFT)) {
          serial.search(qids, offsets, termArray, weightArray, 1, 50, 1);
          serialBytes = serial.compactBytes();
        }
        for (int round = 0; round < 5; round++) {
          try (SpladeBatchSearcher batch = new SpladeBatchSearcher(index.toString(), "contents",
              IdCache.DEFAULT_MAX_BYTES, 1L << 30, SHIFT, SHIFT)) {
            SpladeBatchSearcher.Result result = batch.search(qids, offsets, termArray, weightArray, 1, 50, 4);
            for (int q = 0; q < n; q++) {
              ScoredDoc[] expected = simple.search(queries.get(q), 50);
              int from = result.offsets[q];
              check(result.offsets[q + 1] - from == expected.length, "q" + q + ": hits");
              for (int i = 0; i < expected.length; i++) {
                check(expected[i].docid.equals(result.docids[from + i]) && expected[i].score == result.scores[from + i],
                    "round " + round + " q" + q + " rank " + (i + 1) + ": " + result.docids[from + i]);
              }
            }
            check(batch.compactBytes() == serialBytes, "each term copied once per segment: " + batch.compactBytes()
                + " bytes, one thread " + serialBytes);
          }
        }
      }
    });

    tests.put("a product above 2^24 or an int overflow leaves the search to Lucene's postings", () -> {
      // 16777215 x impacts up to 1,000 overflows an int and is no exact float: Lucene's float products decide
      try (SpladeBatchSearcher batch = new SpladeBatchSearcher(index.toString(), "contents",
          IdCache.DEFAULT_MAX_BYTES, 1L << 30, SHIFT, 3)) {
        for (Map<String, Integer> query : List.of(Map.of("wide", 16777215, "t0", 16777215),
            Map.of("wide", 16777, "t1", 9), Map.of("t0", 16777215, "t2", 16777213, "t3", 5))) {
          for (int k : new int[] {3, 100}) {
            ScoredDocs expected = batch.searchWithLucene(query, k);
            ScoredDocs got = batch.searchOne(query, k);
            check(Arrays.equals(expected.docids, got.docids) && Arrays.equals(expected.scores, got.scores),
                query + " k=" + k + ": " + Arrays.toString(got.scores) + ", expected "
                    + Arrays.toString(expected.scores));
          }
        }
      }
    });

    tests.put("the int limit of a float threshold is the smallest int whose float reaches it", () -> {
      check(CompactImpactSearch.intLimit(Float.NEGATIVE_INFINITY) == 1, "no threshold");
      for (long base : new long[] {0, 1L << 24, 1L << 25, (1L << 30) + 12345, Integer.MAX_VALUE - 600L}) {
        for (long x = Math.max(1, base - 300); x <= base + 300 && x < Integer.MAX_VALUE; x++) {
          float threshold = (float) x;
          int limit = CompactImpactSearch.intLimit(threshold);
          check((float) limit >= threshold && (limit == 1 || (float) (limit - 1) < threshold),
              "threshold " + threshold + ": limit " + limit);
        }
      }
    });

    tests.put("the k-th largest score by selection equals a sort's", () -> {
      Random random = new Random(3);
      for (int round = 0; round < 300; round++) {
        int n = 1 + random.nextInt(3000);
        float[] a = new float[n];
        int distinct = 1 + random.nextInt(round % 2 == 0 ? 5 : 100000);
        for (int i = 0; i < n; i++) {
          a[i] = random.nextInt(distinct);
        }
        float[] sorted = a.clone();
        Arrays.sort(sorted);
        int k = 1 + random.nextInt(n);
        check(TopHits.kthLargest(a, n, k) == sorted[n - k], "n=" + n + " k=" + k);
      }
    });
    return tests;
  }
}
