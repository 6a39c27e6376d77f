/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.splade;

import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.NumericDocValues;
import org.apache.lucene.index.PostingsEnum;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.index.TermVectors;
import org.apache.lucene.index.Terms;
import org.apache.lucene.index.TermsEnum;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.store.FSDirectory;
import org.apache.lucene.util.Bits;
import org.apache.lucene.util.BytesRef;

import java.io.IOException;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;

/**
 * Compares the "contents" field of two Lucene indexes by external docid: postings (document, term frequency),
 * norms, and term vectors (terms and frequencies) when both indexes have them; also the set of ids.
 *
 * <p>{@code java io.anserini.splade.IndexCompare INDEX_A INDEX_B [field]}: prints {@code IDENTICAL ...} and exits 0,
 * or prints the first differences and exits 1.
 */
public final class IndexCompare {
  private static final Set<String> ID_ONLY = Set.of("id");

  private IndexCompare() {
  }

  /** Canonical, sorted lines describing the field: "P term id freq", "N id norm", "V id term freq", "D id". */
  public static List<String> describe(String indexDir, String field, boolean vectors) throws IOException {
    List<String> lines = new ArrayList<>();
    try (IndexReader reader = DirectoryReader.open(FSDirectory.open(Paths.get(indexDir)))) {
      for (LeafReaderContext ctx : reader.leaves()) {
        LeafReader leaf = ctx.reader();
        Bits live = leaf.getLiveDocs();
        StoredFields stored = leaf.storedFields();
        String[] ids = new String[leaf.maxDoc()];
        for (int d = 0; d < leaf.maxDoc(); d++) {
          if (live == null || live.get(d)) {
            ids[d] = stored.document(d, ID_ONLY).get("id");
            lines.add("D " + ids[d]);
          }
        }
        Terms terms = leaf.terms(field);
        if (terms != null) {
          TermsEnum te = terms.iterator();
          BytesRef term;
          PostingsEnum pe = null;
          while ((term = te.next()) != null) {
            String t = term.utf8ToString();
            pe = te.postings(pe, PostingsEnum.FREQS);
            int d;
            while ((d = pe.nextDoc()) != DocIdSetIterator.NO_MORE_DOCS) {
              if (ids[d] != null) {
                lines.add("P " + t + " " + ids[d] + " " + pe.freq());
              }
            }
          }
        }
        NumericDocValues norms = leaf.getNormValues(field);
        if (norms != null) {
          int d;
          while ((d = norms.nextDoc()) != DocIdSetIterator.NO_MORE_DOCS) {
            if (ids[d] != null) {
              lines.add("N " + ids[d] + " " + norms.longValue());
            }
          }
        }
        if (vectors) {
          TermVectors tvs = leaf.termVectors();
          for (int d = 0; d < leaf.maxDoc(); d++) {
            if (ids[d] == null) {
              continue;
            }
            Terms tv = tvs.get(d, field);
            if (tv == null) {
              continue;
            }
            TermsEnum te = tv.iterator();
            BytesRef term;
            while ((term = te.next()) != null) {
              lines.add("V " + ids[d] + " " + term.utf8ToString() + " " + te.totalTermFreq());
            }
          }
        }
      }
    }
    Collections.sort(lines);
    return lines;
  }

  public static boolean hasTermVectors(String indexDir, String field) throws IOException {
    try (IndexReader reader = DirectoryReader.open(FSDirectory.open(Paths.get(indexDir)))) {
      for (LeafReaderContext ctx : reader.leaves()) {
        var info = ctx.reader().getFieldInfos().fieldInfo(field);
        if (info != null && info.hasTermVectors()) {
          return true;
        }
      }
    }
    return false;
  }

  /** Differences (at most {@code limit}), empty when identical. */
  public static List<String> compare(String a, String b, String field, int limit) throws IOException {
    boolean vectors = hasTermVectors(a, field) && hasTermVectors(b, field);
    List<String> la = describe(a, field, vectors);
    List<String> lb = describe(b, field, vectors);
    List<String> diffs = new ArrayList<>();
    int i = 0;
    int j = 0;
    while ((i < la.size() || j < lb.size()) && diffs.size() < limit) {
      int c = i >= la.size() ? 1 : j >= lb.size() ? -1 : la.get(i).compareTo(lb.get(j));
      if (c == 0) {
        i++;
        j++;
      } else if (c < 0) {
        diffs.add("only in A: " + la.get(i++));
      } else {
        diffs.add("only in B: " + lb.get(j++));
      }
    }
    return diffs;
  }

  public static void main(String[] args) throws IOException {
    if (args.length < 2) {
      System.err.println("usage: IndexCompare INDEX_A INDEX_B [field]");
      System.exit(2);
    }
    String field = args.length > 2 ? args[2] : "contents";
    boolean vectors = hasTermVectors(args[0], field) && hasTermVectors(args[1], field);
    List<String> diffs = compare(args[0], args[1], field, 20);
    if (diffs.isEmpty()) {
      long postings = describe(args[0], field, false).stream().filter(s -> s.startsWith("P ")).count();
      System.out.println("IDENTICAL " + postings + " postings" + (vectors ? " (term vectors compared)" : ""));
      System.exit(0);
    }
    for (String d : diffs) {
      System.out.println(d);
    }
    System.out.println("DIFFERENT");
    System.exit(1);
  }
}
