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
import org.apache.lucene.index.DocValuesType;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.MultiTerms;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.Sort;
import org.apache.lucene.search.SortField;
import org.apache.lucene.search.TopFieldDocs;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.BytesRef;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Impact search of a whole batch of sparse queries in one call (one JNI crossing from Python).
 *
 * <p>Queries come as flat primitive arrays: query {@code i} has the terms {@code terms[offsets[i] .. offsets[i+1])}
 * with weights {@code weights[...]}. Each weight becomes an integer boost with the rule of {@link Quantizer}
 * ({@code round-half-away-from-zero(w * scale)}; non-positive boosts dropped). The search then gives exactly
 * SimpleImpactSearcher's results: there the query is built by Anserini's BagOfWordsQueryGenerator from the same
 * {@code Map<String, Float>} (a BooleanQuery of BoostQuery(TermQuery) on "contents"), scored with ImpactSimilarity,
 * sorted by score then by the "id" field, and passed through Anserini's ScoreTiesAdjusterReranker. Here the same
 * scores and order are computed directly from the postings by an exact, rank-safe search ({@link
 * ExactImpactSearch}: on compact in-memory copies of the query terms' postings, {@link CompactImpacts}, made on first
 * use within a memory budget, else on Lucene's postings with MaxScore; top k and ties in {@link TopHits}, ids from
 * {@link IdCache}; Lucene's own path is kept for the cases that this does not cover), then passed through the same
 * reranker. Runs are thus identical to
 * SimpleImpactSearcher's (docids, scores, order), but queries run on several threads and the results return as
 * flat arrays.
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

    /**
     * All docids joined by newlines: one string crosses JNI instead of one per hit (Python splits it). Returns null
     * when a docid itself contains a newline, so the caller falls back to {@link #docids}.
     */
    public String docidsJoined() {
      StringBuilder all = new StringBuilder(docids.length * 12);
      for (int i = 0; i < docids.length; i++) {
        String id = docids[i];
        if (id.indexOf('\n') >= 0) {
          return null;
        }
        if (i > 0) {
          all.append('\n');
        }
        all.append(id);
      }
      return all.toString();
    }
  }

  private final IndexReader reader;
  private final IndexSearcher searcher;
  private final String field;
  /** Every segment has "id" as binary doc values, or no "id" field at all (else Lucene's sort fails: its path). */
  private final boolean idValuesSortable;
  private final MaxImpacts maxImpacts;
  private final CompactImpacts compact;
  private final ThreadLocal<ExactImpactSearch> workspaces;
  private final int idCacheMaxBytes;
  private volatile IdCache idCache;
  private volatile boolean idCacheDone;
  /** Search threads kept from call to call (with their workspaces); grown when a call asks for more. */
  private ThreadPoolExecutor pool;

  public SpladeBatchSearcher(String indexDir) throws IOException {
    this(indexDir, "contents");
  }

  public SpladeBatchSearcher(String indexDir, String field) throws IOException {
    this(indexDir, field, IdCache.DEFAULT_MAX_BYTES);
  }

  /** {@code idCacheMaxBytes}: the most bytes of ids that the id cache may hold (see {@link IdCache}). */
  public SpladeBatchSearcher(String indexDir, String field, int idCacheMaxBytes) throws IOException {
    this(indexDir, field, idCacheMaxBytes, CompactImpacts.DEFAULT_MAX_BYTES);
  }

  /**
   * {@code compactMaxBytes}: the most bytes that the compact copies of the postings may take ({@link
   * CompactImpacts}; 0: search Lucene's postings only).
   */
  public SpladeBatchSearcher(String indexDir, String field, int idCacheMaxBytes, long compactMaxBytes)
      throws IOException {
    // blocks as large as the windows (next to no memory) unless the block-max search is on
    this(indexDir, field, idCacheMaxBytes, compactMaxBytes, CompactImpacts.DEFAULT_SHIFT,
        ExactImpactSearch.BLOCK_MAX_K > 0 ? Math.min(CompactImpacts.DEFAULT_BLOCK_SHIFT, CompactImpacts.DEFAULT_SHIFT)
            : CompactImpacts.DEFAULT_SHIFT);
  }

  /**
   * As above, with windows of 2^{@code compactShift} and blocks of 2^{@code blockShift} docids in the compact
   * postings (tests).
   */
  SpladeBatchSearcher(String indexDir, String field, int idCacheMaxBytes, long compactMaxBytes, int compactShift,
                      int blockShift) throws IOException {
    Path path = Paths.get(indexDir);
    if (!Files.isDirectory(path) || !Files.isReadable(path)) {
      throw new IOException(indexDir + " does not exist or is not a readable directory");
    }
    this.reader = DirectoryReader.open(FSDirectory.open(path));
    this.searcher = new IndexSearcher(reader);
    this.searcher.setSimilarity(new ImpactSimilarity());
    this.field = field;
    this.idCacheMaxBytes = idCacheMaxBytes;
    boolean sortable = true;
    for (LeafReaderContext leaf : reader.leaves()) {
      FieldInfo id = leaf.reader().getFieldInfos().fieldInfo("id");
      if (id != null && id.getDocValuesType() != DocValuesType.BINARY) {
        sortable = false;
      }
    }
    this.idValuesSortable = sortable;
    this.maxImpacts = new MaxImpacts(reader);
    this.compact = compactMaxBytes > 0 ? new CompactImpacts(reader, compactMaxBytes, compactShift, blockShift)
        : null;
    this.workspaces = ThreadLocal.withInitial(() -> new ExactImpactSearch(searcher, field, maxImpacts, compact));
  }

  /**
   * The kept pool, with at least {@code threads} daemon threads; a call uses as many of them as it asks for. It
   * grows in place (never replaced), so a call running concurrently on it is never cut short.
   */
  private synchronized ExecutorService pool(int threads) {
    if (pool == null) {
      pool = new ThreadPoolExecutor(threads, threads, 0L, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>(), task -> {
        Thread thread = new Thread(task, "splade-search");
        thread.setDaemon(true);
        return thread;
      });
    } else if (pool.getCorePoolSize() < threads) {
      pool.setMaximumPoolSize(threads); // the maximum first: the core size may not exceed it
      pool.setCorePoolSize(threads);
    }
    return pool;
  }

  /**
   * Every term of the searched field, joined by newlines (one string crosses JNI), or null when a term itself holds
   * a newline. A query term outside this set matches nothing, so its weight need not even be computed.
   */
  public String termsJoined() throws IOException {
    Terms terms = MultiTerms.getTerms(reader, field);
    if (terms == null) {
      return "";
    }
    StringBuilder all = new StringBuilder();
    TermsEnum it = terms.iterator();
    boolean first = true;
    for (BytesRef term = it.next(); term != null; term = it.next()) {
      String text = term.utf8ToString();
      if (text.indexOf('\n') >= 0) {
        return null;
      }
      if (!first) {
        all.append('\n');
      }
      all.append(text);
      first = false;
    }
    return all.toString();
  }

  /** Documents in the id cache (building it if needed): 0 when the ids are too large for it. */
  public int idCacheSize() throws IOException {
    IdCache cache = idCache();
    return cache == null ? 0 : cache.size();
  }

  /** Bytes taken by the compact copies of the postings so far ({@link CompactImpacts}). */
  public long compactBytes() {
    return compact == null ? 0 : compact.bytesUsed();
  }

  /**
   * This thread's block-max policy (tests): used up to k = {@code maxK}, it gives up past 1 / {@code giveUp} of a
   * segment's blocks (1: never), and is then skipped for {@code retry} queries.
   */
  void blockMaxPolicy(int maxK, int giveUp, int retry) {
    ExactImpactSearch search = workspaces.get();
    search.blockMaxK = maxK;
    search.blockMaxSearch.giveUp = giveUp;
    search.blockMaxRetry = retry;
  }

  /**
   * This thread's block-max search so far: blocks of the segments searched, blocks evaluated, segments searched,
   * segments on which it gave up.
   */
  long[] blockMaxCounts() {
    BlockMaxSearch search = workspaces.get().blockMaxSearch;
    return new long[] {search.blocksSeen, search.blocksEvaluated, search.segments, search.gaveUp};
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
    ScoredDocs docs = null;
    if (idValuesSortable && intQuery.size() <= IndexSearcher.getMaxClauseCount()) {
      docs = workspaces.get().search(intQuery, k, idCache());
    }
    if (docs == null) {
      // What the direct path does not reproduce exactly (an "id" field that Lucene's sort refuses, more clauses
      // than IndexSearcher's limit, a score sum of 2^53 or more): Lucene's own search, errors included.
      return searchWithLucene(intQuery, k);
    }
    // Anserini's own tie adjustment (scores rounded to 4 decimals, ties lowered by 1e-6 steps), as in
    // SimpleImpactSearcher; it only looks at the scores.
    return new ScoreTiesAdjusterReranker<String>().rerank(docs, null);
  }

  /** The same query through Lucene: BooleanQuery, sorted search, ids from the hits. */
  ScoredDocs searchWithLucene(Map<String, Integer> intQuery, int k) throws IOException {
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

  /** The id cache, built on first use (null when the ids are too large for it: see {@link IdCache}). */
  private IdCache idCache() throws IOException {
    if (idCacheDone) {
      return idCache;
    }
    synchronized (this) {
      if (!idCacheDone) {
        idCache = IdCache.build(reader, idCacheMaxBytes);
        idCacheDone = true;
      }
      return idCache;
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
      // `workers` tasks on the kept pool take the queries in turn; a query's failure is kept and the first
      // failing query's error (in query order) is thrown once all are done, whatever the thread timing.
      int workers = Math.min(threads, n);
      ExecutorService pool = pool(workers);
      AtomicInteger next = new AtomicInteger();
      Throwable[] errors = new Throwable[n];
      List<Future<?>> futures = new ArrayList<>(workers);
      for (int w = 0; w < workers; w++) {
        futures.add(pool.submit(() -> {
          for (int i = next.getAndIncrement(); i < n; i = next.getAndIncrement()) {
            try {
              results[i] = searchOne(quantizedQuery(terms, weights, offsets[i], offsets[i + 1], scale), k);
            } catch (Throwable t) {
              errors[i] = t;
            }
          }
        }));
      }
      try {
        for (Future<?> f : futures) {
          f.get();
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted", e);
      } catch (ExecutionException e) {
        throw new IOException(e.getCause());
      }
      for (Throwable cause : errors) {
        if (cause == null) {
          continue;
        }
        if (cause instanceof IOException io) {
          throw io;
        }
        if (cause instanceof RuntimeException re) {
          throw re;
        }
        if (cause instanceof Error err) {
          throw err;
        }
        throw new IOException(cause);
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

  @Override
  public void close() throws IOException {
    synchronized (this) {
      if (pool != null) {
        pool.shutdownNow();
        pool = null;
      }
    }
    workspaces.remove();
    reader.close();
  }
}
