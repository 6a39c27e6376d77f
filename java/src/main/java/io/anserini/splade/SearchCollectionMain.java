/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

import io.anserini.search.SearchCollection;
import org.apache.lucene.search.IndexSearcher;

/**
 * Anserini's {@link SearchCollection} (same arguments, same runs) with Lucene's limit on clauses per query raised.
 *
 * <p>A SPLADE query has one clause per term and can hold more than the 1,024 that Lucene allows by default
 * ({@code IndexSearcher.TooManyClauses}); the limit is JVM-wide and guards against runaway wildcard expansions, which
 * impact search does not make. The package's in-process searchers raise it to the same value
 * ({@code splade_pyserini.anserini.MAX_QUERY_CLAUSES}); {@code splade-pyserini regression run} searches through
 * this class so that its Java subprocess accepts the same queries.
 */
public final class SearchCollectionMain {
  /** The clause limit set before searching (as {@code splade_pyserini.anserini.MAX_QUERY_CLAUSES}). */
  public static final int MAX_QUERY_CLAUSES = 1 << 20;

  private SearchCollectionMain() {}

  public static void main(String[] args) throws Exception {
    if (IndexSearcher.getMaxClauseCount() < MAX_QUERY_CLAUSES) {
      IndexSearcher.setMaxClauseCount(MAX_QUERY_CLAUSES);
    }
    SearchCollection.main(args);
  }
}
