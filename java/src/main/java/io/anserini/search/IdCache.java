/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.search;

import org.apache.lucene.index.BinaryDocValues;
import org.apache.lucene.index.IndexReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.util.BytesRef;
import org.apache.lucene.util.FixedBitSet;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The external ids of a whole index, for ordering ties and returning hits without reading doc values per query: the
 * "id" doc values' bytes one after the other ({@code pool[start[doc] .. start[doc + 1])}); {@code missing} marks the
 * documents without a value (null when none). Read-only once built.
 *
 * <p>Memory: 4 bytes per document (the offsets) plus the ids' UTF-8 bytes (MS MARCO passage, 8.8M documents of ids
 * up to 7 digits: about 35 MiB + 60 MiB). {@link #build} gives up (returns null, and callers read the doc values per
 * hit instead) above {@code maxBytes} of ids; the default, {@link #DEFAULT_MAX_BYTES}, is 1 GiB, and the number of
 * documents is limited only by Lucene's own (2^31 - 128).
 */
public final class IdCache {
  /** Default limit on the ids' bytes: 1 GiB. */
  public static final int DEFAULT_MAX_BYTES = 1 << 30;

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

  /** The cache with the default limit, or null when the ids take more than it. */
  static IdCache build(IndexReader reader) throws IOException {
    return build(reader, DEFAULT_MAX_BYTES);
  }

  /** The cache, or null when the ids take more than {@code maxBytes} bytes. */
  static IdCache build(IndexReader reader, int maxBytes) throws IOException {
    int maxDoc = reader.maxDoc();
    int[] start = new int[maxDoc + 1];
    byte[] pool = new byte[Math.min(maxBytes, Math.max(4096, maxDoc))];
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
          if ((long) used + id.length > maxBytes) {
            return null;
          }
          if (used + id.length > pool.length) {
            long grown = Math.max(2L * pool.length, (long) used + id.length);
            pool = Arrays.copyOf(pool, (int) Math.min(maxBytes, grown));
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

  boolean has(int doc) {
    return missing == null || !missing.get(doc);
  }

  /** The id of {@code doc}, or null when it has none. */
  String id(int doc) {
    if (!has(doc)) {
      return null;
    }
    int from = start[doc];
    int length = start[doc + 1] - from;
    return ascii ? new String(pool, from, length, StandardCharsets.ISO_8859_1)
        : new BytesRef(pool, from, length).utf8ToString();
  }

  int size() {
    return start.length - 1;
  }
}
