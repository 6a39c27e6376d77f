/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.search;

import io.anserini.rerank.lib.ScoreTiesAdjusterReranker;
import io.anserini.search.query.BagOfWordsQueryGenerator;
import io.anserini.search.similarity.ImpactSimilarity;
import io.anserini.splade.Quantizer;
import org.apache.lucene.document.Document;
import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.Sort;
import org.apache.lucene.search.SortField;
import org.apache.lucene.search.TopFieldDocs;
import org.apache.lucene.store.FSDirectory;

import java.io.BufferedWriter;
import java.io.Closeable;
import java.io.IOException;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Impact search of a whole batch of sparse queries in one call (one JNI crossing from Python).
 *
 * <p>Queries come as flat primitive arrays: query {@code i} has the terms {@code terms[offsets[i] .. offsets[i+1])}
 * with weights {@code weights[...]}. Each weight becomes an integer boost with the rule of {@link Quantizer}
 * ({@code round-half-away-from-zero(w * scale)}; non-positive boosts dropped). The search is then exactly
 * SimpleImpactSearcher's: the query is built by Anserini's BagOfWordsQueryGenerator from the same
 * {@code Map<String, Float>} (a BooleanQuery of BoostQuery(TermQuery) on "contents"), scored with ImpactSimilarity,
 * sorted by score then by the "id" field, and passed through Anserini's ScoreTiesAdjusterReranker. Runs are thus
 * identical to SimpleImpactSearcher's (docids, scores, order), but queries run on several threads and the results
 * return as flat arrays.
 */
public class SpladeBatchSearcher implements Closeable {
  private static final Sort BREAK_SCORE_TIES_BY_DOCID =
      new Sort(SortField.FIELD_SCORE, new SortField("id", SortField.Type.STRING_VAL));
  private static final Set<String> ID_ONLY = Set.of("id");

  /** Flat results: hits of query {@code i} are {@code docids/scores[offsets[i] .. offsets[i+1])}, best first. */
  public static final class Result {
    public final String[] qids;
    public final int[] offsets;
    public final String[] docids;
    public final float[] scores;

    Result(String[] qids, int[] offsets, String[] docids, float[] scores) {
      this.qids = qids;
      this.offsets = offsets;
      this.docids = docids;
      this.scores = scores;
    }

    public int size() {
      return docids.length;
    }
  }

  private final IndexReader reader;
  private final IndexSearcher searcher;
  private final String field;

  public SpladeBatchSearcher(String indexDir) throws IOException {
    this(indexDir, "contents");
  }

  public SpladeBatchSearcher(String indexDir, String field) throws IOException {
    Path path = Paths.get(indexDir);
    if (!Files.isDirectory(path) || !Files.isReadable(path)) {
      throw new IOException(indexDir + " does not exist or is not a readable directory");
    }
    this.reader = DirectoryReader.open(FSDirectory.open(path));
    this.searcher = new IndexSearcher(reader);
    this.searcher.setSimilarity(new ImpactSimilarity());
    this.field = field;
  }

  public int numDocs() {
    return reader.numDocs();
  }

  /** Integer boosts of one query, in the order given (a HashMap, as Pyserini builds it for SimpleImpactSearcher). */
  static Map<String, Integer> quantizedQuery(String[] terms, double[] weights, int from, int to, double scale) {
    Map<String, Integer> query = new HashMap<>();
    for (int j = from; j < to; j++) {
      long q = Quantizer.quantize(weights[j], scale);
      if (q <= 0) {
        continue;
      }
      if (q > Integer.MAX_VALUE) {
        throw new IllegalArgumentException("weight " + weights[j] + " of query term \"" + terms[j] + "\" is too large");
      }
      query.put(terms[j], (int) q);
    }
    return query;
  }

  /** One query, exactly as SimpleImpactSearcher.search(Map&lt;String,Integer&gt;, k). */
  ScoredDocs searchOne(Map<String, Integer> intQuery, int k) throws IOException {
    Map<String, Float> floatQuery = new HashMap<>();
    for (Map.Entry<String, Integer> e : intQuery.entrySet()) {
      floatQuery.put(e.getKey(), e.getValue().floatValue());
    }
    Query query = new BagOfWordsQueryGenerator().buildQuery(field, floatQuery);
    TopFieldDocs top = searcher.search(query, k, BREAK_SCORE_TIES_BY_DOCID, true);
    ScoreDoc[] hits = top.scoreDocs;
    ScoredDocs docs = new ScoredDocs();
    docs.lucene_docids = new int[hits.length];
    docs.scores = new float[hits.length];
    docs.docids = new String[hits.length];
    docs.lucene_documents = new Document[hits.length];
    for (int i = 0; i < hits.length; i++) {
      docs.lucene_docids[i] = hits[i].doc;
      docs.scores[i] = hits[i].score;
    }
    readIds(hits, docs.docids);
    // Anserini's own tie adjustment (scores rounded to 4 decimals, ties lowered by 1e-6 steps), as in
    // SimpleImpactSearcher; it only looks at the scores.
    return new ScoreTiesAdjusterReranker<String>().rerank(docs, null);
  }

  /**
   * The external ids of the hits, from the "id" doc values (written by Anserini's generators next to the stored
   * "id", and used for tie-breaking), visited in docid order; the stored field when a document has no doc value.
   * Much cheaper than loading each hit's stored document, as SimpleImpactSearcher does, for the same ids.
   */
  private void readIds(ScoreDoc[] hits, String[] ids) throws IOException {
    long[] order = new long[hits.length];
    for (int i = 0; i < hits.length; i++) {
      order[i] = ((long) hits[i].doc << 32) | i;
    }
    Arrays.sort(order);
    List<LeafReaderContext> leaves = reader.leaves();
    int leafIndex = -1;
    LeafReaderContext leaf = null;
    BinaryDocValues values = null;
    StoredFields stored = null;
    for (long packed : order) {
      int doc = (int) (packed >>> 32);
      int i = (int) packed;
      while (leaf == null || doc >= leaf.docBase + leaf.reader().maxDoc()) {
        leaf = leaves.get(++leafIndex);
        values = leaf.reader().getBinaryDocValues("id");
      }
      String id = null;
      if (values != null && values.advanceExact(doc - leaf.docBase)) {
        id = values.binaryValue().utf8ToString();
      }
      if (id == null) {
        if (stored == null) {
          stored = searcher.storedFields();
        }
        id = stored.document(doc, ID_ONLY).get("id");
      }
      ids[i] = id;
    }
  }

  /**
   * Searches all queries.
   *
   * @param qids    query ids (n)
   * @param offsets n + 1 offsets into terms/weights, starting at 0 and ending at terms.length
   * @param terms   query terms, all queries one after the other
   * @param weights their weights (floats or already-quantised integers)
   * @param scale   quantisation scale (1 for integer weights)
   * @param k       hits per query
   * @param threads number of search threads
   */
  public Result search(String[] qids, int[] offsets, String[] terms, double[] weights, double scale, int k,
                       int threads) throws IOException {
    int n = qids.length;
    if (offsets.length != n + 1 || offsets[0] != 0 || offsets[n] != terms.length || weights.length != terms.length) {
      throw new IllegalArgumentException("offsets must have qids.length + 1 entries from 0 to terms.length,"
          + " and weights as many entries as terms");
    }
    for (int i = 0; i < n; i++) {
      if (offsets[i + 1] < offsets[i]) {
        throw new IllegalArgumentException("offsets must not decrease");
      }
    }
    if (!(scale > 0) || Double.isInfinite(scale)) {
      throw new IllegalArgumentException("scale must be a positive number, got " + scale);
    }
    if (k <= 0) {
      throw new IllegalArgumentException("k must be positive, got " + k);
    }
    ScoredDocs[] results = new ScoredDocs[n];
    if (threads <= 1 || n <= 1) {
      for (int i = 0; i < n; i++) {
        results[i] = searchOne(quantizedQuery(terms, weights, offsets[i], offsets[i + 1], scale), k);
      }
    } else {
      ExecutorService pool = Executors.newFixedThreadPool(Math.min(threads, n));
      try {
        List<Future<ScoredDocs>> futures = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
          final int from = offsets[i];
          final int to = offsets[i + 1];
          futures.add(pool.submit(() -> searchOne(quantizedQuery(terms, weights, from, to, scale), k)));
        }
        for (int i = 0; i < n; i++) {
          results[i] = futures.get(i).get();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      } catch (ExecutionException e) {
        Throwable cause = e.getCause();
        if (cause instanceof IOException io) {
          throw io;
        }
        if (cause instanceof RuntimeException re) {
          throw re;
        }
        throw new IOException(cause);
      } finally {
        pool.shutdownNow();
      }
    }
    int[] hitOffsets = new int[n + 1];
    for (int i = 0; i < n; i++) {
      hitOffsets[i + 1] = hitOffsets[i] + results[i].docids.length;
    }
    String[] docids = new String[hitOffsets[n]];
    float[] scores = new float[hitOffsets[n]];
    for (int i = 0; i < n; i++) {
      System.arraycopy(results[i].docids, 0, docids, hitOffsets[i], results[i].docids.length);
      System.arraycopy(results[i].scores, 0, scores, hitOffsets[i], results[i].scores.length);
    }
    return new Result(qids, hitOffsets, docids, scores);
  }

  /** A score as Python's {@code f"{score:.6f}"} writes it (exact value of the float, halves to even). */
  public static String formatScore(float score) {
    return new BigDecimal((double) score).setScale(6, RoundingMode.HALF_EVEN).toPlainString();
  }

  /**
   * Searches and writes a TREC run ({@code qid Q0 docid rank score tag}, scores with 6 decimals, as
   * splade_pyserini.runs.write_run), atomically (a temporary file renamed at the end). Returns the number of lines.
   */
  public int searchToRun(String[] qids, int[] offsets, String[] terms, double[] weights, double scale, int k,
                         int threads, String runPath, String tag) throws IOException {
    Result result = search(qids, offsets, terms, weights, scale, k, threads);
    Path out = Paths.get(runPath).toAbsolutePath();
    Files.createDirectories(out.getParent());
    Path tmp = Files.createTempFile(out.getParent(), "." + out.getFileName(), ".tmp");
    try {
      try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
        for (int i = 0; i < qids.length; i++) {
          for (int j = result.offsets[i]; j < result.offsets[i + 1]; j++) {
            w.write(qids[i]);
            w.write(" Q0 ");
            w.write(result.docids[j]);
            w.write(' ');
            w.write(Integer.toString(j - result.offsets[i] + 1));
            w.write(' ');
            w.write(formatScore(result.scores[j]));
            w.write(' ');
            w.write(tag);
            w.write('\n');
          }
        }
      }
      Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
    return result.size();
  }

  @Override
  public void close() throws IOException {
    reader.close();
  }
}
