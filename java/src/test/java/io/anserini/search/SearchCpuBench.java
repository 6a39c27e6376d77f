/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.search;

import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.index.Term;
import org.apache.lucene.store.Directory;
import org.apache.lucene.store.FSDirectory;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * CPU time of one search thread, {@link SpladeBatchSearcher} against {@link SimpleImpactSearcher} on the same index
 * in the same JVM (a loaded machine inflates wall-clock times; the thread's CPU time much less). Not a test: a main
 * for benchmarks/README.md.
 *
 * <pre>
 * java -cp CLASSES:FATJAR io.anserini.search.SearchCpuBench INDEX QUERIES.tsv 10,1000 REPEATS
 * java -cp CLASSES:FATJAR io.anserini.search.SearchCpuBench --repeat INDEX OUT TIMES
 * </pre>
 * QUERIES.tsv: one query a line, {@code qid<TAB>term:weight term:weight ...} (integer weights). Each k: one untimed
 * pass of every query on both searchers, then REPEATS passes, interleaved; the fastest pass of each is kept, and the
 * hits compared (docids and scores, in order). {@code --repeat} writes an index holding TIMES copies of INDEX's
 * documents (Lucene's addIndexes, merged to 2 segments): a larger index with the same term statistics per document.
 */
public final class SearchCpuBench {
  private SearchCpuBench() {
  }

  public static void main(String[] args) throws Exception {
    if (args.length == 4 && args[0].equals("--repeat")) {
      repeat(Paths.get(args[1]), Paths.get(args[2]), Integer.parseInt(args[3]));
      return;
    }
    if (args.length != 4) {
      System.err.println("usage: SearchCpuBench INDEX QUERIES.tsv K1,K2 REPEATS | --repeat INDEX OUT TIMES");
      System.exit(2);
    }
    String index = args[0];
    List<Map<String, Integer>> queries = readQueries(Paths.get(args[1]));
    int[] ks = Arrays.stream(args[2].split(",")).mapToInt(Integer::parseInt).toArray();
    int repeats = Integer.parseInt(args[3]);
    ThreadMXBean bean = ManagementFactory.getThreadMXBean();
    try (SpladeBatchSearcher batch = new SpladeBatchSearcher(index);
         SimpleImpactSearcher simple = new SimpleImpactSearcher(index);
         DirectoryReader reader = DirectoryReader.open(FSDirectory.open(Paths.get(index)))) {
      Set<String> distinct = new HashSet<>();
      queries.forEach(q -> distinct.addAll(q.keySet()));
      long postings = 0;
      for (String term : distinct) {
        postings += reader.docFreq(new Term("contents", term));
      }
      long cpu = bean.getCurrentThreadCpuTime();
      long wall = System.nanoTime();
      for (Map<String, Integer> q : queries) {
        batch.searchOne(q, 10);
      }
      System.out.printf("%d docs, %d segments, %d queries, %d distinct terms with %d postings; first pass (copies"
              + " them): CPU %.2f s, wall %.2f s; compact postings %d bytes (%.2f a posting); load %.2f%n",
          reader.maxDoc(), reader.leaves().size(), queries.size(), distinct.size(), postings,
          (bean.getCurrentThreadCpuTime() - cpu) / 1e9, (System.nanoTime() - wall) / 1e9, batch.compactBytes(),
          (double) batch.compactBytes() / postings,
          ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
      for (int k : ks) {
        long[] best = {Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE, Long.MAX_VALUE};
        int identical = 0;
        long[] blocksBefore = batch.blockMaxCounts();
        for (int r = 0; r <= repeats; r++) {
          List<ScoredDoc[]> expected = new ArrayList<>();
          long c0 = bean.getCurrentThreadCpuTime();
          long w0 = System.nanoTime();
          for (Map<String, Integer> q : queries) {
            expected.add(simple.search(q, k));
          }
          long c1 = bean.getCurrentThreadCpuTime();
          long w1 = System.nanoTime();
          List<ScoredDocs> got = new ArrayList<>();
          for (Map<String, Integer> q : queries) {
            got.add(batch.searchOne(q, k));
          }
          long c2 = bean.getCurrentThreadCpuTime();
          long w2 = System.nanoTime();
          if (r == 0) {
            continue; // warm-up
          }
          best[0] = Math.min(best[0], c1 - c0);
          best[1] = Math.min(best[1], c2 - c1);
          best[2] = Math.min(best[2], w1 - w0);
          best[3] = Math.min(best[3], w2 - w1);
          identical = 0;
          for (int i = 0; i < queries.size(); i++) {
            identical += same(expected.get(i), got.get(i)) ? 1 : 0;
          }
        }
        double n = queries.size() * 1e6;
        long[] blocks = batch.blockMaxCounts();
        long seen = blocks[0] - blocksBefore[0];
        System.out.printf("k=%d CPU ms/query: SimpleImpactSearcher %.2f, SpladeBatchSearcher %.2f (%.1fx) | wall %.2f,"
                + " %.2f (%.1fx) | identical %d/%d | block-max: %s | load %.2f%n", k, best[0] / n, best[1] / n,
            (double) best[0] / best[1], best[2] / n, best[3] / n, (double) best[2] / best[3], identical,
            queries.size(), seen == 0 ? "not used" : String.format("%.2f%% of blocks evaluated, gave up on %d of %d"
                + " segments", 100.0 * (blocks[1] - blocksBefore[1]) / seen, blocks[3] - blocksBefore[3],
                blocks[2] - blocksBefore[2]),
            ManagementFactory.getOperatingSystemMXBean().getSystemLoadAverage());
      }
    }
  }

  private static boolean same(ScoredDoc[] expected, ScoredDocs got) {
    if (expected.length != got.docids.length) {
      return false;
    }
    for (int i = 0; i < expected.length; i++) {
      if (!expected[i].docid.equals(got.docids[i]) || expected[i].score != got.scores[i]) {
        return false;
      }
    }
    return true;
  }

  private static List<Map<String, Integer>> readQueries(Path tsv) throws Exception {
    List<Map<String, Integer>> queries = new ArrayList<>();
    for (String line : Files.readAllLines(tsv)) {
      if (line.isBlank()) {
        continue;
      }
      Map<String, Integer> query = new HashMap<>();
      for (String termWeight : line.split("\t", 2)[1].split(" ")) {
        int colon = termWeight.lastIndexOf(':');
        query.put(termWeight.substring(0, colon), Integer.parseInt(termWeight.substring(colon + 1)));
      }
      queries.add(query);
    }
    return queries;
  }

  private static void repeat(Path index, Path out, int times) throws Exception {
    IndexWriterConfig config = new IndexWriterConfig(null);
    try (Directory source = FSDirectory.open(index);
         IndexWriter writer = new IndexWriter(FSDirectory.open(out), config)) {
      for (int i = 0; i < times; i++) {
        writer.addIndexes(source);
      }
      writer.forceMerge(2);
    }
  }
}
