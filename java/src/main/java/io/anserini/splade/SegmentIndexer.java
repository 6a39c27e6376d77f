/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

import io.anserini.collection.FileSegment;
import io.anserini.collection.SpladeVectorCollection;
import io.anserini.index.Counters;
import io.anserini.index.IndexCollection;
import io.anserini.search.similarity.AccurateBM25Similarity;
import io.anserini.search.similarity.ImpactSimilarity;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.lucene.analysis.core.WhitespaceAnalyzer;
import org.apache.lucene.index.ConcurrentMergeScheduler;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.search.similarities.BM25Similarity;
import org.apache.lucene.search.similarities.Similarity;
import org.apache.lucene.store.FSDirectory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Indexes a {@link SpladeVectorCollection} without IndexWriter's per-document inversion: each thread parses shards
 * (the collection's own parser and quantiser), accumulates a batch of documents' postings in a {@link PostingsBatch},
 * and hands each full batch to {@code IndexWriter.addIndexes} as a {@link BatchCodecReader}, so that Lucene's merge
 * code writes it as one segment with the default codec. The index equals the one IndexCollection writes with
 * {@code SpladeImpactGenerator} (postings, norms, term vectors, stored fields, doc values, field infos); only the
 * order of the documents and the segments differ.
 *
 * <p>A batch ends at {@link #BATCH_DOCS_PROPERTY} documents (default 100,000) or {@link #BATCH_POSTINGS_PROPERTY}
 * postings (default 8M, about 16 bytes a posting while it is written: ~130 MB a thread), whichever comes first.
 *
 * <p>Supports IndexCollection's options {@code -storeDocvectors -storeRaw -storeContents -optimize -impact
 * -bm25.accurate -pretokenized -memoryBuffer -threads}; {@link #supports} tells whether a set of options can be
 * indexed this way.
 */
final class SegmentIndexer {
  static final String BATCH_DOCS_PROPERTY = "splade.batchDocs";
  static final String BATCH_POSTINGS_PROPERTY = "splade.batchPostings";
  private static final Logger LOG = LogManager.getLogger(SegmentIndexer.class);

  private final IndexCollection.Args args;
  private final Counters counters = new Counters();
  private final int batchDocs = Integer.getInteger(BATCH_DOCS_PROPERTY, 100_000);
  private final int batchPostings = Integer.getInteger(BATCH_POSTINGS_PROPERTY, 8 << 20);

  SegmentIndexer(IndexCollection.Args args) {
    this.args = args;
  }

  /** Null when {@code args} can be indexed as segments, otherwise the reason why not. */
  static String unsupported(IndexCollection.Args args) {
    if (!SpladeVectorCollection.class.getSimpleName().equals(args.collectionClass)) {
      return "-collection " + args.collectionClass;
    }
    if (!"SpladeImpactGenerator".equals(args.generatorClass)) {
      return "-generator " + args.generatorClass;
    }
    if (args.uniqueDocid) {
      return "-uniqueDocid";
    }
    if (args.whitelist != null) {
      return "-whitelist";
    }
    if (args.append) {
      return "-append";
    }
    if (args.storePositions) {
      return "-storePositions";
    }
    if (args.shardCount > 1) {
      return "-shard.count";
    }
    return null;
  }

  Counters counters() {
    return counters;
  }

  private Similarity similarity() {
    if (args.bm25Accurate) {
      return new AccurateBM25Similarity();
    }
    return args.impact ? new ImpactSimilarity() : new BM25Similarity();
  }

  void run() throws IOException, InterruptedException {
    Path input = Paths.get(args.input);
    if (!Files.isDirectory(input)) {
      throw new IllegalArgumentException("Invalid collection path \"" + args.input + "\".");
    }
    SpladeVectorCollection collection = new SpladeVectorCollection(input);
    List<Path> shards = collection.getSegmentPaths();
    long start = System.nanoTime();
    LOG.info("{} {} found in {} (segments writer: batches of {} documents or {} postings)", shards.size(),
        shards.size() == 1 ? "file" : "files", input, batchDocs, batchPostings);
    LOG.info("Starting to index...");

    IndexWriterConfig config = new IndexWriterConfig(new WhitespaceAnalyzer());
    config.setSimilarity(similarity());
    config.setOpenMode(IndexWriterConfig.OpenMode.CREATE);
    config.setRAMBufferSizeMB(args.memoryBuffer);
    config.setUseCompoundFile(false);
    ConcurrentMergeScheduler scheduler = new ConcurrentMergeScheduler();
    int threads = Math.max(1, args.threads);
    scheduler.setMaxMergesAndThreads(threads + 5, threads);
    // A batch's segment is written as a merge; IndexWriter's own flushes are never rate-limited, nor are these.
    scheduler.disableAutoIOThrottle();
    config.setMergeScheduler(scheduler);

    try (IndexWriter writer = new IndexWriter(FSDirectory.open(Paths.get(args.index)), config)) {
      AtomicInteger nextShard = new AtomicInteger();
      ExecutorService pool = Executors.newFixedThreadPool(threads);
      List<Future<?>> workers = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        workers.add(pool.submit(() -> {
          work(collection, shards, nextShard, writer);
          return null;
        }));
      }
      pool.shutdown();
      try {
        for (Future<?> f : workers) {
          f.get();
        }
      } catch (java.util.concurrent.ExecutionException e) {
        pool.shutdownNow();
        Throwable cause = e.getCause();
        if (cause instanceof IOException io) {
          throw io;
        }
        if (cause instanceof RuntimeException re) {
          throw re;
        }
        throw new RuntimeException(cause);
      }
      long maxDoc = writer.getDocStats().maxDoc;
      if (maxDoc != counters.indexed.get()) {
        throw new IllegalStateException(counters.indexed.get() + " documents indexed but the index holds " + maxDoc);
      }
      writer.commit();
      if (args.optimize) {
        writer.forceMerge(1);
      }
    }
    long millis = (System.nanoTime() - start) / 1_000_000;
    LOG.info(String.format("Total %,d documents indexed in %s", counters.indexed.get(),
        org.apache.commons.lang3.time.DurationFormatUtils.formatDuration(millis, "HH:mm:ss")));
  }

  /**
   * One thread: shards taken in turn, one batch kept across shards, written as a segment when full and at the end
   * ({@code addIndexes} returns once the segment is written; the batch's arrays then serve the next batch).
   */
  private void work(SpladeVectorCollection collection, List<Path> shards, AtomicInteger nextShard,
                    IndexWriter writer) throws IOException {
    PostingsBatch batch = newBatch();
    int i;
    while ((i = nextShard.getAndIncrement()) < shards.size()) {
      Path shard = shards.get(i);
      int added = 0;
      FileSegment<SpladeVectorCollection.Document> segment = collection.createFileSegment(shard);
      try {
        for (SpladeVectorCollection.Document d : segment) {
          if (d.size() == 0) {
            counters.empty.incrementAndGet();
            continue;
          }
          batch.add(d.id(), d.terms(), d.impacts(), args.storeRaw ? d.raw() : null);
          added++;
          if (batch.docs() >= batchDocs || batch.postings() >= batchPostings) {
            flush(batch, writer);
          }
        }
        counters.skipped.addAndGet(segment.getSkippedCount());
        if (segment.getErrorStatus()) {
          counters.errors.incrementAndGet();
        }
      } finally {
        segment.close();
      }
      LOG.info("{}: {} docs added.", shard.getFileName(), added);
    }
    if (batch.docs() > 0) {
      flush(batch, writer);
    }
  }

  private PostingsBatch newBatch() {
    return new PostingsBatch(similarity(), args.storeRaw);
  }

  private void flush(PostingsBatch batch, IndexWriter writer) throws IOException {
    batch.freeze();
    writer.addIndexes(new BatchCodecReader(batch, args.storeDocvectors, args.storeRaw, args.storeContents));
    counters.indexed.addAndGet(batch.docs());
    batch.clear();
  }
}
