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
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.MultiTerms;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.DocAndFloatFeatureBuffer;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.Sort;
import org.apache.lucene.search.SortField;
import org.apache.lucene.search.TopFieldDocs;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.BytesRef;
import org.apache.lucene.util.FixedBitSet;

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
 * scores and order are computed directly from the postings (see {@link Workspace}; Lucene's own path is kept for
 * the cases that this does not cover), then passed through the same reranker. Runs are thus identical to
 * SimpleImpactSearcher's (docids, scores, order), but queries run on several threads and the results return as
 * flat arrays.
 */
public class SpladeBatchSearcher implements Closeable {
  private static final Sort BREAK_SCORE_TIES_BY_DOCID =
      new Sort(SortField.FIELD_SCORE, new SortField("id", SortField.Type.STRING_VAL));
  private static final Set<String> ID_ONLY = Set.of("id");
  /** Documents per accumulation window of the direct search (one double each, per search thread). */
  private static final int WINDOW = 1 << 16;
  /** Below this, sums of integer-valued doubles are exact whatever the order of the additions. */
  private static final double EXACT_SUM_LIMIT = 0x1p53;
  /** Postings enums that a search thread keeps per segment for reuse (allocating them showed in profiles). */
  private static final int REUSED_POSTINGS = 64;
  /** Limits of the id cache (see {@link IdCache}): 4M documents (16 MiB of offsets), 64 MiB of id bytes. */
  private static final int ID_CACHE_MAX_DOCS = 1 << 22;
  private static final int ID_CACHE_MAX_BYTES = 1 << 26;

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
  private final ThreadLocal<Workspace> workspaces;
  private volatile IdCache idCache;
  private volatile boolean idCacheDone;
  /** Search threads kept from call to call (with their workspaces); grown when a call asks for more. */
  private ThreadPoolExecutor pool;

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
    boolean sortable = true;
    int largestSegment = 1;
    for (LeafReaderContext leaf : reader.leaves()) {
      largestSegment = Math.max(largestSegment, leaf.reader().maxDoc());
      FieldInfo id = leaf.reader().getFieldInfos().fieldInfo("id");
      if (id != null && id.getDocValuesType() != DocValuesType.BINARY) {
        sortable = false;
      }
    }
    this.idValuesSortable = sortable;
    final int windowSize = Math.min(WINDOW, largestSegment);
    this.workspaces = ThreadLocal.withInitial(() -> new Workspace(windowSize));
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
      docs = workspaces.get().search(intQuery, k);
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

  /**
   * The external ids of the whole index, for ordering ties and writing hits without reading doc values per query:
   * the "id" doc values' bytes one after the other ({@code pool[start[doc] .. start[doc + 1])}); {@code missing}
   * marks the documents without a value (null when none). Built once, on first use, for indexes of at most
   * {@link #ID_CACHE_MAX_DOCS} documents and {@link #ID_CACHE_MAX_BYTES} bytes of ids; read-only afterwards.
   */
  private static final class IdCache {
    final byte[] pool;
    final int[] start;
    final FixedBitSet missing;
    /** All ids are ASCII: their UTF-8 decoding is a plain copy of the bytes. */
    final boolean ascii;

    private IdCache(byte[] pool, int[] start, FixedBitSet missing) {
      this.pool = pool;
      this.start = start;
      this.missing = missing;
      boolean allAscii = true;
      for (byte b : pool) {
        if (b < 0) {
          allAscii = false;
          break;
        }
      }
      this.ascii = allAscii;
    }

    /** The cache, or null when the index is too large for it. */
    static IdCache build(IndexReader reader) throws IOException {
      int maxDoc = reader.maxDoc();
      if (maxDoc > ID_CACHE_MAX_DOCS) {
        return null;
      }
      int[] start = new int[maxDoc + 1];
      byte[] pool = new byte[Math.min(ID_CACHE_MAX_BYTES, Math.max(4096, maxDoc))];
      FixedBitSet missing = null;
      int used = 0;
      for (LeafReaderContext leaf : reader.leaves()) {
        BinaryDocValues values = leaf.reader().getBinaryDocValues("id");
        int leafMaxDoc = leaf.reader().maxDoc();
        for (int doc = 0; doc < leafMaxDoc; doc++) {
          int global = leaf.docBase + doc;
          start[global] = used;
          if (values != null && values.advanceExact(doc)) {
            BytesRef id = values.binaryValue();
            if ((long) used + id.length > ID_CACHE_MAX_BYTES) {
              return null;
            }
            if (used + id.length > pool.length) {
              long grown = Math.max(2L * pool.length, used + id.length);
              pool = Arrays.copyOf(pool, (int) Math.min(ID_CACHE_MAX_BYTES, grown));
            }
            System.arraycopy(id.bytes, id.offset, pool, used, id.length);
            used += id.length;
          } else {
            if (missing == null) {
              missing = new FixedBitSet(maxDoc);
            }
            missing.set(global);
          }
        }
      }
      start[maxDoc] = used;
      return new IdCache(Arrays.copyOf(pool, used), start, missing);
    }
  }

  private IdCache idCache() throws IOException {
    if (idCacheDone) {
      return idCache;
    }
    synchronized (this) {
      if (!idCacheDone) {
        idCache = IdCache.build(reader);
        idCacheDone = true;
      }
      return idCache;
    }
  }

  /**
   * The direct search of one thread, with its reusable buffers.
   *
   * <p>It computes what the sorted Lucene search computes, without its per-hit comparator calls:
   * <ul>
   *   <li>scores: a term's score in a document is ImpactSimilarity's {@code freq * boost} (a float product, with
   *   the frequency as a float, as Lucene's TermScorer gets it from {@code nextPostings}); Lucene's disjunctions
   *   (BooleanScorer, MaxScoreBulkScorer, DisjunctionSumScorer) add the clause scores in a double and cast the sum
   *   to float once. Here the sums are accumulated term at a time in a double per document, over windows of
   *   {@link #WINDOW} documents. Every clause score is an integer-valued float (a product of two integers, rounded
   *   to float), so while a sum stays below 2^53 every partial sum is exact in a double and the order of the
   *   additions does not matter; a query with a larger sum goes through Lucene instead.</li>
   *   <li>order: score descending, then the "id" doc value ascending (BytesRef order: unsigned bytes; a document
   *   without a value first, as SortField.Type.STRING_VAL's comparator puts missing values), then Lucene docid
   *   ascending (the hit queue's last tie-break, and the merge order of slices).</li>
   *   <li>selection: candidates (in docid order) are kept while they score at least the k-th largest score seen so
   *   far (found by radix selection, not sorting), so that every document of the final top k is among them; at
   *   the end the candidates are sorted by score (stable radix sort, so docid order stays among equal scores), and
   *   only runs of equal scores are sorted by id.</li>
   * </ul>
   */
  private final class Workspace {
    /** Score sums of the current window, 0 where no term matched. */
    private final double[] acc;
    /** Window slots that some term matched (bits). */
    private final long[] seen;
    private final DocAndFloatFeatureBuffer buffer = new DocAndFloatFeatureBuffer();
    /** Postings enums kept from query to query, per segment ({@link #REUSED_POSTINGS} at most each). */
    private final PostingsEnum[][] reusable;

    /** Candidates, in docid order. */
    private float[] candScores = new float[1024];
    private int[] candDocs = new int[1024];
    private int size;
    private float minScore;
    private int compactAt;
    private int[] scratch = new int[1024];
    private final int[] histogram = new int[1 << RADIX_BITS];
    private final int[] sortHistogram = new int[1 << SORT_RADIX_BITS];

    /** Final order (candidate indexes), and the ids of the candidates: bytes ids[idStart[i] ..] or length -1. */
    private int[] perm = new int[1024];
    private int[] mergeTmp = new int[1024];
    private byte[] ids = new byte[1 << 14];
    private int[] idStart = new int[1024];
    private int[] idLength = new int[1024];

    Workspace(int windowSize) {
      acc = new double[windowSize];
      seen = new long[(windowSize + 63) >>> 6];
      reusable = new PostingsEnum[reader.leaves().size()][0];
    }

    /** The top k of one query, or null when a score sum is too large to be exact in a double. */
    ScoredDocs search(Map<String, Integer> query, int k) throws IOException {
      int n = query.size();
      BytesRef[] termBytes = new BytesRef[n];
      float[] boosts = new float[n];
      int q = 0;
      for (Map.Entry<String, Integer> e : query.entrySet()) {
        termBytes[q] = new BytesRef(e.getKey());
        boosts[q] = e.getValue().floatValue(); // BoostQuery's boost, the SimScorer's factor
        q++;
      }
      size = 0;
      minScore = Float.NEGATIVE_INFINITY;
      compactAt = (int) Math.min(Math.max(2L * k, 4096L), Integer.MAX_VALUE - 1024);
      PostingsEnum[] postings = new PostingsEnum[n];
      float[] weights = new float[n];
      List<LeafReaderContext> leaves = reader.leaves();
      for (int leafOrd = 0; leafOrd < leaves.size(); leafOrd++) {
        LeafReaderContext leaf = leaves.get(leafOrd);
        LeafReader leafReader = leaf.reader();
        Terms terms = leafReader.terms(field);
        if (terms == null) {
          continue;
        }
        TermsEnum termsEnum = terms.iterator();
        PostingsEnum[] reuse = reusable[leafOrd];
        int m = 0;
        for (int t = 0; t < n; t++) {
          if (termsEnum.seekExact(termBytes[t])) {
            if (m < REUSED_POSTINGS) {
              if (m >= reuse.length) {
                reuse = Arrays.copyOf(reuse, Math.min(REUSED_POSTINGS, Math.max(8, 2 * m)));
                reusable[leafOrd] = reuse;
              }
              postings[m] = termsEnum.postings(reuse[m], PostingsEnum.FREQS);
              reuse[m] = postings[m];
            } else {
              postings[m] = termsEnum.postings(null, PostingsEnum.FREQS);
            }
            weights[m] = boosts[t];
            postings[m].nextDoc();
            m++;
          }
        }
        Bits live = leafReader.getLiveDocs();
        while (m > 0) {
          int first = DocIdSetIterator.NO_MORE_DOCS;
          for (int t = 0; t < m; t++) {
            first = Math.min(first, postings[t].docID());
          }
          if (first == DocIdSetIterator.NO_MORE_DOCS) {
            break;
          }
          int end = (int) Math.min((long) first + acc.length, DocIdSetIterator.NO_MORE_DOCS);
          for (int t = 0; t < m; t++) {
            PostingsEnum pe = postings[t];
            float boost = weights[t];
            while (pe.docID() < end) {
              pe.nextPostings(end, buffer);
              if (live != null) {
                buffer.apply(live);
              }
              int[] docs = buffer.docs;
              float[] freqs = buffer.features;
              for (int i = 0, count = buffer.size; i < count; i++) {
                int slot = docs[i] - first;
                seen[slot >>> 6] |= 1L << slot;
                acc[slot] += freqs[i] * boost; // float product (ImpactSimilarity), summed in a double (Lucene)
              }
            }
          }
          if (flush(leaf.docBase + first, end - first, k) >= EXACT_SUM_LIMIT) {
            size = 0;
            return null;
          }
        }
      }
      ScoredDocs docs = topHits(k);
      size = 0;
      return docs;
    }

    /** Moves the window's sums (docs base + slot) to the candidates, in docid order; returns the largest sum. */
    private double flush(int base, int length, int k) {
      double largest = 0;
      int words = (length + 63) >>> 6;
      for (int w = 0; w < words; w++) {
        long word = seen[w];
        if (word == 0) {
          continue;
        }
        seen[w] = 0;
        if (size + 64 > candScores.length) {
          growCandidates(size + 64);
        }
        float[] scores = candScores;
        int[] docs = candDocs;
        float min = minScore;
        int s = size;
        do {
          int slot = (w << 6) + Long.numberOfTrailingZeros(word);
          word &= word - 1;
          double sum = acc[slot];
          acc[slot] = 0;
          largest = Math.max(largest, sum);
          float score = (float) sum;
          scores[s] = score;
          docs[s] = base + slot;
          s += score >= min ? 1 : 0;
        } while (word != 0);
        size = s;
        if (s >= compactAt && s > k) {
          compact(k);
          if (size > compactAt / 2) { // many ties at the threshold: compact less often
            compactAt = (int) Math.min(2L * compactAt, Integer.MAX_VALUE - 1024);
          }
        }
      }
      return largest;
    }

    private void growCandidates(int needed) {
      int grown = (int) Math.min(Math.max(2L * candScores.length, needed), Integer.MAX_VALUE - 8);
      candScores = Arrays.copyOf(candScores, grown);
      candDocs = Arrays.copyOf(candDocs, grown);
    }

    /** Keeps the candidates that score at least the k-th largest score (size &gt; k), in their order. */
    private void compact(int k) {
      if (scratch.length < size) {
        scratch = new int[candScores.length];
      }
      float threshold = kthLargest(candScores, size, k, scratch, histogram);
      float[] scores = candScores;
      int[] docs = candDocs;
      int kept = 0;
      for (int i = 0, n = size; i < n; i++) {
        float score = scores[i];
        int doc = docs[i];
        scores[kept] = score;
        docs[kept] = doc;
        kept += score >= threshold ? 1 : 0;
      }
      size = kept;
      minScore = threshold;
    }

    private ScoredDocs topHits(int k) throws IOException {
      if (size > k) {
        compact(k); // every candidate now scores at least the final k-th score
      }
      int n = size;
      if (perm.length < n) {
        perm = new int[candScores.length];
        mergeTmp = new int[candScores.length];
        idStart = new int[candScores.length];
        idLength = new int[candScores.length];
      }
      if (scratch.length < n) {
        scratch = new int[candScores.length];
      }
      sortByScore(n);
      // runs of equal scores that reach into the top k: by id (stable, so docid order stays among equal ids)
      boolean idsRead = false;
      IdCache cache = idCache();
      for (int from = 0; from < n && from < k; ) {
        int to = from + 1;
        float score = candScores[perm[from]];
        while (to < n && candScores[perm[to]] == score) {
          to++;
        }
        if (to - from > 1) {
          if (!idsRead) {
            readIds(n, cache);
            idsRead = true;
          }
          sortById(from, to);
        }
        from = to;
      }
      int out = Math.min(k, n);
      ScoredDocs docs = new ScoredDocs();
      docs.lucene_docids = new int[out];
      docs.scores = new float[out];
      docs.docids = new String[out];
      docs.lucene_documents = new Document[out];
      StoredFields stored = null;
      if (!idsRead && cache == null) {
        readIds(n, null);
        idsRead = true;
      }
      for (int r = 0; r < out; r++) {
        int p = perm[r];
        int doc = candDocs[p];
        docs.lucene_docids[r] = doc;
        docs.scores[r] = candScores[p];
        String id = null;
        if (cache != null) {
          if (cache.missing == null || !cache.missing.get(doc)) {
            int from = cache.start[doc];
            int length = cache.start[doc + 1] - from;
            id = cache.ascii ? new String(cache.pool, from, length, StandardCharsets.ISO_8859_1)
                : new BytesRef(cache.pool, from, length).utf8ToString();
          }
        } else if (idLength[p] >= 0) {
          id = new BytesRef(ids, idStart[p], idLength[p]).utf8ToString();
        }
        if (id == null) {
          if (stored == null) {
            stored = searcher.storedFields();
          }
          id = stored.document(doc, ID_ONLY).get("id");
        }
        docs.docids[r] = id;
      }
      return docs;
    }

    /** perm[0, n): the candidates by score descending, docid ascending (LSD radix sort on the float bits). */
    private void sortByScore(int n) {
      int[] bits = scratch;
      int[] src = perm;
      int[] dst = mergeTmp;
      for (int i = 0; i < n; i++) {
        bits[i] = Float.floatToRawIntBits(candScores[i]); // non-negative floats order as their bits
        src[i] = i;
      }
      int mask = (1 << SORT_RADIX_BITS) - 1;
      int[] hist = sortHistogram;
      for (int shift = 0; shift < 31 && n > 1; shift += SORT_RADIX_BITS) {
        Arrays.fill(hist, 0);
        for (int i = 0; i < n; i++) {
          hist[(bits[i] >>> shift) & mask]++;
        }
        if (hist[(bits[0] >>> shift) & mask] == n) {
          continue; // the same digit everywhere
        }
        int pos = 0;
        for (int b = mask; b >= 0; b--) { // descending
          int c = hist[b];
          hist[b] = pos;
          pos += c;
        }
        for (int i = 0; i < n; i++) {
          int v = src[i];
          dst[hist[(bits[v] >>> shift) & mask]++] = v;
        }
        int[] t = src;
        src = dst;
        dst = t;
      }
      if (src != perm) {
        System.arraycopy(src, 0, perm, 0, n);
      }
    }

    /** The id bytes of candidates [0, n): from the cache, else from the doc values (in docid order). */
    private void readIds(int n, IdCache cache) throws IOException {
      if (cache != null) {
        ids = cache.pool;
        for (int i = 0; i < n; i++) {
          int doc = candDocs[i];
          if (cache.missing != null && cache.missing.get(doc)) {
            idStart[i] = 0;
            idLength[i] = -1;
          } else {
            idStart[i] = cache.start[doc];
            idLength[i] = cache.start[doc + 1] - cache.start[doc];
          }
        }
        return;
      }
      List<LeafReaderContext> leaves = reader.leaves();
      int leafIndex = -1;
      LeafReaderContext leaf = null;
      BinaryDocValues values = null;
      int used = 0;
      for (int i = 0; i < n; i++) {
        int doc = candDocs[i];
        while (leaf == null || doc >= leaf.docBase + leaf.reader().maxDoc()) {
          leaf = leaves.get(++leafIndex);
          values = leaf.reader().getBinaryDocValues("id");
        }
        if (values != null && values.advanceExact(doc - leaf.docBase)) {
          BytesRef id = values.binaryValue();
          if (used + id.length > ids.length) {
            ids = Arrays.copyOf(ids, Math.max(2 * ids.length, used + id.length));
          }
          System.arraycopy(id.bytes, id.offset, ids, used, id.length);
          idStart[i] = used;
          idLength[i] = id.length;
          used += id.length;
        } else {
          idStart[i] = 0;
          idLength[i] = -1;
        }
      }
    }

    /** As SortField.Type.STRING_VAL's comparator: missing first, then BytesRef.compareTo (unsigned bytes). */
    private int compareIds(int a, int b) {
      int la = idLength[a];
      int lb = idLength[b];
      if (la < 0 || lb < 0) {
        return la < 0 ? (lb < 0 ? 0 : -1) : 1;
      }
      return Arrays.compareUnsigned(ids, idStart[a], idStart[a] + la, ids, idStart[b], idStart[b] + lb);
    }

    /** Stable merge sort of perm[from, to) by id. */
    private void sortById(int from, int to) {
      if (to - from <= 16) {
        for (int i = from + 1; i < to; i++) {
          int v = perm[i];
          int j = i - 1;
          while (j >= from && compareIds(perm[j], v) > 0) {
            perm[j + 1] = perm[j];
            j--;
          }
          perm[j + 1] = v;
        }
        return;
      }
      int mid = (from + to) >>> 1;
      sortById(from, mid);
      sortById(mid, to);
      if (compareIds(perm[mid - 1], perm[mid]) <= 0) {
        return;
      }
      System.arraycopy(perm, from, mergeTmp, from, mid - from);
      int i = from;
      int j = mid;
      int o = from;
      while (i < mid && j < to) {
        perm[o++] = compareIds(perm[j], mergeTmp[i]) < 0 ? perm[j++] : mergeTmp[i++];
      }
      while (i < mid) {
        perm[o++] = mergeTmp[i++];
      }
    }
  }

  /** Digits of the radix selection (over many candidates) and of the radix sort (over about k hits). */
  private static final int RADIX_BITS = 11;
  private static final int SORT_RADIX_BITS = 8;

  /**
   * The k-th largest of a[0, n) (1 &lt;= k &lt;= n; non-negative floats, which order as their bits), by radix
   * selection on the float bits, 11 bits at a time from the top (histogram, then only the elements of the bucket
   * that holds the k-th go on): a few predictable linear passes, whatever the ties. Leaves a as it is.
   */
  static float kthLargest(float[] a, int n, int k, int[] scratch, int[] histogram) {
    int buckets = histogram.length;
    int shift = 31 - RADIX_BITS; // bit 31 (sign) is 0
    // level 1: all elements
    Arrays.fill(histogram, 0);
    for (int i = 0; i < n; i++) {
      histogram[Float.floatToRawIntBits(a[i]) >>> shift]++;
    }
    int b = buckets - 1;
    while (histogram[b] < k) {
      k -= histogram[b--];
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
      int bits = Float.floatToRawIntBits(a[i]);
      scratch[m] = bits;
      m += (bits >>> shift) == b ? 1 : 0;
    }
    // lower levels: the elements of the chosen bucket, in scratch
    while (shift > 0 && m > 1) {
      int prefix = shift;
      shift = Math.max(0, shift - RADIX_BITS);
      int levelMask = (1 << (prefix - shift)) - 1;
      Arrays.fill(histogram, 0);
      for (int i = 0; i < m; i++) {
        histogram[(scratch[i] >>> shift) & levelMask]++;
      }
      b = levelMask;
      while (histogram[b] < k) {
        k -= histogram[b--];
      }
      int kept = 0;
      for (int i = 0; i < m; i++) {
        int bits = scratch[i];
        scratch[kept] = bits;
        kept += ((bits >>> shift) & levelMask) == b ? 1 : 0;
      }
      m = kept;
    }
    return Float.intBitsToFloat(scratch[0]);
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
