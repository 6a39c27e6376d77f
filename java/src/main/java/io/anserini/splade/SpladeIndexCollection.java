/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

import io.anserini.collection.SpladeVectorCollection;
import io.anserini.index.Counters;
import io.anserini.index.IndexCollection;
import io.anserini.util.LoggingBootstrap;
import org.kohsuke.args4j.CmdLineException;
import org.kohsuke.args4j.CmdLineParser;
import org.kohsuke.args4j.ParserProperties;

import java.util.ArrayList;
import java.util.List;

/**
 * Anserini's IndexCollection, strict: the same options, plus {@code -splade.scale S} (sets {@code splade.scale}) and
 * {@code -splade.writer segments|documents}, and failures end the JVM with a non-zero status instead of a log line
 * and exit 0.
 *
 * <p>Writers: {@code segments} (the default for {@code SpladeVectorCollection} + {@code SpladeImpactGenerator}) builds
 * each batch of documents' postings in memory and adds it as a segment ({@link SegmentIndexer}); {@code documents}
 * is Anserini's IndexCollection, one Lucene document at a time. Both write the same index. Options the segments writer
 * does not support (e.g. {@code -uniqueDocid}, another collection) take the documents writer, with a notice.
 *
 * <ul>
 *   <li>malformed input: {@code ERROR SpladeVectorCollection: file:line: ...}, exit 1 (sets
 *   {@code splade.exitOnError});</li>
 *   <li>a segment that could not be read (Anserini's "errors" counter): exit 1;</li>
 *   <li>bad options: exit 2.</li>
 * </ul>
 * On success it prints {@code SPLADE_INDEX_STATS indexed=N empty=N skipped=N unindexable=N errors=0}.
 */
public final class SpladeIndexCollection {
  private SpladeIndexCollection() {
  }

  /** Option choosing the writer: {@code segments} or {@code documents}. */
  public static final String WRITER_OPTION = "-splade.writer";

  public static void main(String[] argv) throws Exception {
    LoggingBootstrap.installJulToSlf4jBridge();
    List<String> rest = new ArrayList<>();
    String writer = null;
    for (int i = 0; i < argv.length; i++) {
      if (WRITER_OPTION.equals(argv[i])) {
        if (i + 1 >= argv.length || !List.of("segments", "documents").contains(argv[i + 1])) {
          System.err.println("ERROR: " + WRITER_OPTION + " needs a value: segments or documents");
          System.exit(2);
        }
        writer = argv[++i];
      } else if ("-splade.scale".equals(argv[i])) {
        if (i + 1 >= argv.length) {
          System.err.println("ERROR: -splade.scale needs a value");
          System.exit(2);
        }
        System.setProperty(Quantizer.SCALE_PROPERTY, argv[++i]);
      } else {
        rest.add(argv[i]);
      }
    }
    System.setProperty(SpladeVectorCollection.EXIT_ON_ERROR_PROPERTY, "true");
    try {
      Quantizer.scaleFromSystemProperty();
    } catch (IllegalArgumentException e) {
      System.err.println("ERROR: " + e.getMessage());
      System.exit(2);
    }

    IndexCollection.Args args = new IndexCollection.Args();
    CmdLineParser parser = new CmdLineParser(args, ParserProperties.defaults().withUsageWidth(120));
    try {
      parser.parseArgument(rest.toArray(new String[0]));
    } catch (CmdLineException e) {
      System.err.println("ERROR: " + e.getMessage());
      System.exit(2);
    }

    String unsupported = SegmentIndexer.unsupported(args);
    if (!"documents".equals(writer) && unsupported == null) {
      runSegments(args);
      return;
    }
    if ("segments".equals(writer)) {
      System.err.println("ERROR: " + WRITER_OPTION + " segments does not support " + unsupported
          + "; use " + WRITER_OPTION + " documents");
      System.exit(2);
    }
    if (writer == null) {
      System.err.println("NOTE: indexing one document at a time (" + WRITER_OPTION + " documents): the segments"
          + " writer does not support " + unsupported);
    }

    IndexCollection indexer;
    try {
      indexer = new IndexCollection(args);
    } catch (IllegalArgumentException e) {
      System.err.println("ERROR: " + e.getMessage());
      System.exit(2);
      return;
    }
    try {
      indexer.run();
    } catch (RuntimeException e) {
      System.err.println("ERROR SpladeIndexCollection: " + e.getMessage());
      System.exit(1);
    }
    finish(indexer.getCounters(), args);
  }

  private static void runSegments(IndexCollection.Args args) throws Exception {
    SegmentIndexer indexer = new SegmentIndexer(args);
    try {
      indexer.run();
    } catch (IllegalArgumentException e) {
      System.err.println("ERROR: " + e.getMessage());
      System.exit(2);
    } catch (RuntimeException e) {
      System.err.println("ERROR SpladeIndexCollection: " + e);
      System.exit(1);
    }
    finish(indexer.counters(), args);
  }

  /** Checks the counters, prints SPLADE_INDEX_STATS and ends the JVM. */
  private static void finish(Counters c, IndexCollection.Args args) {
    if (c.errors.get() > 0) {
      System.err.println("ERROR SpladeIndexCollection: " + c.errors.get()
          + " input file(s) could not be read completely (see the log above)");
      System.exit(1);
    }
    if (args.collectionClass.equals(SpladeVectorCollection.class.getSimpleName())) {
      long read = SpladeVectorCollection.DOCUMENTS_READ.get();
      long accounted = c.indexed.get() + c.empty.get() + c.skipped.get() + c.unindexable.get();
      if (read != accounted) {
        System.err.println("ERROR SpladeIndexCollection: " + (read - accounted) + " of " + read
            + " documents read were not indexed (an exception in an indexing thread; see the log above)");
        System.exit(1);
      }
    }
    System.out.println("SPLADE_INDEX_STATS indexed=" + c.indexed.get() + " empty=" + c.empty.get()
        + " skipped=" + c.skipped.get() + " unindexable=" + c.unindexable.get() + " errors=" + c.errors.get());
    System.exit(0);
  }
}
