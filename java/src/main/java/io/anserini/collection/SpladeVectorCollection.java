/*
 * splade-pyserini: Java extension for Anserini.
 * Licensed under the Apache License, Version 2.0.
 */

package io.anserini.collection;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import io.anserini.splade.Quantizer;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.apache.parquet.schema.GroupType;
import org.apache.parquet.schema.PrimitiveType;
import org.apache.parquet.schema.Type;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;
import java.util.zip.GZIPInputStream;

/**
 * SPLADE vectors for {@code IndexCollection -collection SpladeVectorCollection -generator SpladeImpactGenerator}.
 *
 * <p>Reads a folder of shards:
 * <ul>
 *   <li>{@code .jsonl} / {@code .jsonl.gz} (also {@code .json} / {@code .json.gz}), one JsonVectorCollection object a
 *   line: {@code {"id": ..., "contents": ..., "vector": {term: weight, ...}}}; weights are integers or floats;</li>
 *   <li>{@code .parquet}, with columns {@code id} (string), {@code terms} (list of string) and {@code weights} (list
 *   of float, double, int32 or int64).</li>
 * </ul>
 *
 * <p>Weights become integer impacts with the rule of {@link Quantizer}: with a scale (the constructor argument, or
 * {@code -Dsplade.scale=S}) every weight is {@code round-half-away-from-zero(w * S)}; without one, integer weights are
 * taken as they are and a fractional weight is an error (never a silent truncation). Impacts that are not positive
 * are dropped; a document left without terms is skipped as empty (as Anserini does). When a term appears twice in
 * one JSON vector, the last weight wins (as with Jackson's tree model in JsonVectorCollection).
 *
 * <p>A malformed line raises {@link FormatException} whose message starts with {@code file:line:}. Anserini's
 * IndexCollection only logs exceptions of its indexing threads and still exits 0; with
 * {@code -Dsplade.exitOnError=true} the error is printed ({@code ERROR SpladeVectorCollection: ...}) and the JVM
 * exits with status 1 instead, so that a half-built index is never mistaken for a complete one.
 *
 * <p>Hidden files (names starting with ".") and {@code encoding.json} (splade-pyserini's metadata) are not read.
 *
 * <p>One file of about 600 lines for one concept, the collection Anserini names by {@code -collection}: its document,
 * its two segment readers and the parser they share are nested classes, as in Anserini's own collections, whose
 * {@code IndexCollection} finds a collection's parts through that one class.
 */
public class SpladeVectorCollection extends DocumentCollection<SpladeVectorCollection.Document> {
  /** System property: exit the JVM with status 1 on the first malformed input. */
  public static final String EXIT_ON_ERROR_PROPERTY = "splade.exitOnError";
  /** splade-pyserini's metadata file beside the shards. */
  public static final String METADATA_FILE = "encoding.json";

  // Terms are JSON field names: canonicalising them (Jackson's default) copies a growing symbol table for every line
  // that brings a new term, which made parsing several times slower.
  private static final JsonFactory JSON = JsonFactory.builder()
      .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
      .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
      .build();

  /** Documents read by all segments of this JVM (lets a driver check that every one was indexed or counted). */
  public static final AtomicLong DOCUMENTS_READ = new AtomicLong();

  private final double scale;

  public SpladeVectorCollection() {
    this(null);
  }

  public SpladeVectorCollection(Path path) {
    this(path, Quantizer.scaleFromSystemProperty());
  }

  /** {@code scale}: {@code NaN} for none (integer weights taken as they are). */
  public SpladeVectorCollection(Path path, double scale) {
    this.path = path;
    if (!Double.isNaN(scale) && (!(scale > 0) || Double.isInfinite(scale))) {
      throw new IllegalArgumentException("scale must be a positive number, got " + scale);
    }
    this.scale = scale;
    this.allowedFileSuffix.addAll(List.of(".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet"));
    this.skippedFilePrefix.add(".");
  }

  public double scale() {
    return scale;
  }

  @Override
  public List<Path> getSegmentPaths() {
    return withoutMetadata(super.getSegmentPaths());
  }

  @Override
  public List<Path> getSegmentPaths(int shardCount, int currentShard) {
    return withoutMetadata(super.getSegmentPaths(shardCount, currentShard));
  }

  private static List<Path> withoutMetadata(List<Path> paths) {
    return paths.stream()
        .filter(p -> p.getFileName() == null || !METADATA_FILE.equals(p.getFileName().toString()))
        .collect(Collectors.toList());
  }

  @Override
  public FileSegment<Document> createFileSegment(Path p) throws IOException {
    if (p.toString().endsWith(".parquet")) {
      return new ParquetSegment(p, scale);
    }
    return new JsonSegment(p, scale);
  }

  @Override
  public FileSegment<Document> createFileSegment(BufferedReader reader) throws IOException {
    return new JsonSegment(reader, scale);
  }

  /** Bad input; the message names the file and the line (or Parquet row). */
  public static class FormatException extends RuntimeException {
    public FormatException(String message) {
      super(message);
    }

    public FormatException(String message, Throwable cause) {
      super(message, cause);
    }
  }

  static FormatException fail(String message, Throwable cause) {
    FormatException e = new FormatException(message, cause);
    if (Boolean.getBoolean(EXIT_ON_ERROR_PROPERTY)) {
      System.out.flush();
      System.err.println("ERROR SpladeVectorCollection: " + message);
      System.err.flush();
      System.exit(1);
    }
    return e;
  }

  /** One document: its id and its terms with positive integer impacts. */
  public static class Document implements SourceDocument {
    private final String id;
    private final String[] terms;
    private final int[] impacts;
    private final String raw;
    private String contents;

    public Document(String id, String[] terms, int[] impacts, String raw) {
      if (terms.length != impacts.length) {
        throw new IllegalArgumentException("terms and impacts differ in length");
      }
      this.id = id;
      this.terms = terms;
      this.impacts = impacts;
      this.raw = raw;
    }

    @Override
    public String id() {
      return id;
    }

    public String[] terms() {
      return terms;
    }

    public int[] impacts() {
      return impacts;
    }

    public int size() {
      return terms.length;
    }

    /**
     * Anserini's pseudo-document (each term repeated {@code impact} times), built only when asked for, so that
     * {@code -generator DefaultLuceneDocumentGenerator} (or {@code -storeContents}) still works.
     */
    @Override
    public String contents() {
      if (contents == null) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < terms.length; i++) {
          for (int j = 0; j < impacts[i]; j++) {
            sb.append(terms[i]).append(' ');
          }
        }
        contents = sb.toString();
      }
      return contents;
    }

    @Override
    public String raw() {
      return raw;
    }

    @Override
    public boolean indexable() {
      return true;
    }
  }

  /** Collects one document's weights: quantises, drops non-positive impacts, lets a repeated term's last weight win. */
  static final class Builder {
    private final double scale;
    private final Map<String, Integer> slots = new HashMap<>();
    private String[] terms = new String[256];
    private long[] impacts = new long[256];
    private int size;

    Builder(double scale) {
      this.scale = scale;
    }

    void clear() {
      slots.clear();
      size = 0;
    }

    /** Adds a weight; returns an error message, or null. */
    String add(String term, double weight, boolean integral) {
      long q;
      if (Double.isNaN(weight) || Double.isInfinite(weight)) {
        return "weight " + weight + " of term \"" + term + "\" is not a finite number";
      }
      if (Double.isNaN(scale)) {
        if (!integral && weight != Math.rint(weight)) {
          return "weight " + weight + " of term \"" + term + "\" is not an integer and no scale was declared"
              + " (pass -D" + Quantizer.SCALE_PROPERTY + "=S, e.g. 100, to quantise float weights)";
        }
        q = (long) Math.rint(weight);
      } else {
        q = Quantizer.quantize(weight, scale);
      }
      if (q > Quantizer.MAX_IMPACT) {
        return "weight " + weight + " of term \"" + term + "\" gives impact " + q + ", above " + Quantizer.MAX_IMPACT;
      }
      Integer slot = slots.putIfAbsent(term, size);
      if (slot != null) {
        impacts[slot] = q;
        return null;
      }
      if (size == terms.length) {
        terms = Arrays.copyOf(terms, size * 2);
        impacts = Arrays.copyOf(impacts, size * 2);
      }
      terms[size] = term;
      impacts[size] = q;
      size++;
      return null;
    }

    /** Returns an error message, or null. */
    String checkLength() {
      long total = 0;
      for (int i = 0; i < size; i++) {
        if (impacts[i] > 0) {
          total += impacts[i];
        }
      }
      return total > Integer.MAX_VALUE ? "the impacts sum to " + total + ", above " + Integer.MAX_VALUE : null;
    }

    Document build(String id, String raw) {
      int n = 0;
      boolean split = false;
      for (int i = 0; i < size; i++) {
        if (impacts[i] > 0) {
          n++;
          split |= needsSplit(terms[i]);
        }
      }
      if (split) {
        return buildSplit(id, raw);
      }
      String[] t = new String[n];
      int[] w = new int[n];
      int j = 0;
      for (int i = 0; i < size; i++) {
        if (impacts[i] > 0) {
          t[j] = terms[i];
          w[j] = (int) impacts[i];
          j++;
        }
      }
      return new Document(id, t, w, raw);
    }

    private static boolean needsSplit(String term) {
      if (term.isEmpty()) {
        return true;
      }
      for (int i = 0; i < term.length(); i++) {
        if (Character.isWhitespace(term.charAt(i))) {
          return true;
        }
      }
      return false;
    }

    /**
     * The rare vector whose terms are empty or hold whitespace: index the pieces Anserini's whitespace tokenizer
     * would make of the pseudo-document (an empty term vanishes; "a b" with weight w adds w to "a" and to "b").
     */
    private Document buildSplit(String id, String raw) {
      Map<String, Long> merged = new java.util.LinkedHashMap<>();
      for (int i = 0; i < size; i++) {
        if (impacts[i] <= 0) {
          continue;
        }
        for (String piece : terms[i].split("\\p{javaWhitespace}+")) {
          if (!piece.isEmpty()) {
            merged.merge(piece, impacts[i], Long::sum);
          }
        }
      }
      String[] t = new String[merged.size()];
      int[] w = new int[merged.size()];
      int j = 0;
      for (Map.Entry<String, Long> e : merged.entrySet()) {
        t[j] = e.getKey();
        w[j] = (int) Math.min(Integer.MAX_VALUE, e.getValue());
        j++;
      }
      return new Document(id, t, w, raw);
    }
  }

  /**
   * Parses one JsonVectorCollection line. {@code where} ("file:line") prefixes error messages.
   * Public so that tests and tools can use it without a file.
   */
  public static Document parseJson(String line, double scale, String where) {
    return parseJson(line, new Builder(scale), where);
  }

  static Document parseJson(String line, Builder builder, String where) {
    builder.clear();
    String id = null;
    boolean hasVector = false;
    try (JsonParser p = JSON.createParser(line)) {
      if (p.nextToken() != JsonToken.START_OBJECT) {
        throw fail(where + ": expected a JSON object {\"id\", \"vector\"}", null);
      }
      JsonToken token;
      while ((token = p.nextToken()) == JsonToken.FIELD_NAME) {
        String name = p.currentName();
        JsonToken value = p.nextToken();
        if ("id".equals(name)) {
          if (value == JsonToken.VALUE_STRING || value == JsonToken.VALUE_NUMBER_INT) {
            id = p.getText();
          } else {
            throw fail(where + ": \"id\" must be a string, got " + value, null);
          }
        } else if ("vector".equals(name)) {
          if (value != JsonToken.START_OBJECT) {
            throw fail(where + ": \"vector\" must be an object {term: weight}, got " + value, null);
          }
          hasVector = true;
          while (p.nextToken() == JsonToken.FIELD_NAME) {
            String term = p.currentName();
            JsonToken w = p.nextToken();
            String error;
            if (w == JsonToken.VALUE_NUMBER_INT) {
              if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
                throw fail(where + ": weight " + p.getText() + " of term \"" + term + "\" is too large", null);
              }
              error = builder.add(term, (double) p.getLongValue(), true);
            } else if (w == JsonToken.VALUE_NUMBER_FLOAT) {
              error = builder.add(term, p.getDoubleValue(), false);
            } else {
              throw fail(where + ": weight of term \"" + term + "\" must be a number, got " + w, null);
            }
            if (error != null) {
              throw fail(where + ": " + error, null);
            }
          }
        } else {
          p.skipChildren();
        }
      }
      if (token != JsonToken.END_OBJECT) {
        throw fail(where + ": malformed JSON object", null);
      }
      if (p.nextToken() != null) {
        throw fail(where + ": unexpected text after the JSON object", null);
      }
    } catch (JsonProcessingException e) {
      String message = e.getOriginalMessage();
      if (message != null) {
        message = message.lines().findFirst().orElse(message);
      }
      throw fail(where + ": malformed JSON (" + message + ")", e);
    } catch (IOException e) {
      throw fail(where + ": " + e.getMessage(), e);
    }
    if (id == null) {
      throw fail(where + ": no \"id\" field", null);
    }
    if (!hasVector) {
      throw fail(where + ": no \"vector\" field", null);
    }
    String error = builder.checkLength();
    if (error != null) {
      throw fail(where + ": " + error, null);
    }
    return builder.build(id, line);
  }

  /** A .jsonl(.gz) shard, read line by line so that errors can name the line. */
  public static class JsonSegment extends FileSegment<Document> {
    private final Builder builder;
    private final String name;
    private long lineNumber;

    public JsonSegment(Path path, double scale) throws IOException {
      super(path);
      this.name = path.toString();
      this.builder = new Builder(scale);
      InputStream in = Files.newInputStream(path);
      if (name.endsWith(".gz")) {
        in = new GZIPInputStream(in, 1 << 16);
      }
      this.bufferedReader = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8), 1 << 16);
    }

    public JsonSegment(BufferedReader reader, double scale) throws IOException {
      super(reader);
      this.name = "<stream>";
      this.builder = new Builder(scale);
    }

    @Override
    protected void readNext() throws IOException, NoSuchElementException {
      String line;
      while ((line = bufferedReader.readLine()) != null) {
        lineNumber++;
        if (!line.isBlank()) {
          bufferedRecord = parseJson(line, builder, name + ":" + lineNumber);
          DOCUMENTS_READ.incrementAndGet();
          return;
        }
      }
      atEOF = true;
      throw new NoSuchElementException("end of " + name);
    }
  }

  /** A Parquet shard with columns id, terms, weights. */
  public static class ParquetSegment extends FileSegment<Document> {
    private final Builder builder;
    private final String name;
    private final ParquetReader<Group> reader;
    private long row;

    public ParquetSegment(Path path, double scale) throws IOException {
      super(path);
      this.name = path.toString();
      this.builder = new Builder(scale);
      try {
        this.reader = ParquetReader.builder(new GroupReadSupport(), new org.apache.hadoop.fs.Path(path.toString()))
            .build();
      } catch (IOException | RuntimeException | LinkageError e) {
        throw fail(name + ": cannot open Parquet file (" + e + ")", e);
      }
    }

    @Override
    protected void readNext() throws IOException, NoSuchElementException {
      Group group;
      try {
        group = reader.read();
      } catch (IOException | RuntimeException | LinkageError e) {
        throw fail(name + ": row " + (row + 1) + ": cannot read Parquet (" + e
            + "); snappy, zstd and uncompressed files are readable", e);
      }
      if (group == null) {
        atEOF = true;
        reader.close();
        throw new NoSuchElementException("end of " + name);
      }
      row++;
      bufferedRecord = toDocument(group, name + ": row " + row);
      DOCUMENTS_READ.incrementAndGet();
    }

    private Document toDocument(Group group, String where) {
      builder.clear();
      GroupType schema = group.getType();
      for (String column : List.of("id", "terms", "weights")) {
        if (!schema.containsField(column)) {
          throw fail(where + ": no column \"" + column + "\" (need id: string, terms: list<string>,"
              + " weights: list<float>)", null);
        }
      }
      if (group.getFieldRepetitionCount("id") == 0) {
        throw fail(where + ": \"id\" is null", null);
      }
      Type idType = schema.getType("id");
      Object idValue = idType.isPrimitive()
          ? primitive(group, schema.getFieldIndex("id"), 0, idType.asPrimitiveType()) : null;
      if (idValue == null) {
        throw fail(where + ": \"id\" must be a string", null);
      }
      String id = idValue.toString();
      Object[] terms = listValues(group, "terms", where);
      Object[] weights = listValues(group, "weights", where);
      if (terms.length != weights.length) {
        throw fail(where + ": " + terms.length + " terms but " + weights.length + " weights", null);
      }
      for (int i = 0; i < terms.length; i++) {
        if (!(terms[i] instanceof String term)) {
          throw fail(where + ": \"terms\" must be a list of strings", null);
        }
        Object w = weights[i];
        String error;
        if (w instanceof Integer || w instanceof Long) {
          error = builder.add(term, ((Number) w).doubleValue(), true);
        } else if (w instanceof Float || w instanceof Double) {
          error = builder.add(term, ((Number) w).doubleValue(), false);
        } else {
          throw fail(where + ": \"weights\" must be a list of numbers", null);
        }
        if (error != null) {
          throw fail(where + ": " + error, null);
        }
      }
      String error = builder.checkLength();
      if (error != null) {
        throw fail(where + ": " + error, null);
      }
      return builder.build(id, null);
    }

    /** Values of a list column (3-level LIST as written by pyarrow, or a legacy 2-level repeated field). */
    private static Object[] listValues(Group group, String column, String where) {
      if (group.getFieldRepetitionCount(column) == 0) {
        return new Object[0];
      }
      Type type = group.getType().getType(column);
      if (type.isPrimitive()) {
        int n = group.getFieldRepetitionCount(column);
        Object[] out = new Object[n];
        for (int i = 0; i < n; i++) {
          out[i] = primitive(group, group.getType().getFieldIndex(column), i, type.asPrimitiveType());
        }
        return out;
      }
      Group list = group.getGroup(column, 0);
      GroupType listType = list.getType();
      if (listType.getFieldCount() != 1) {
        throw fail(where + ": column \"" + column + "\" is not a list", null);
      }
      int n = list.getFieldRepetitionCount(0);
      Type repeated = listType.getType(0);
      Object[] out = new Object[n];
      for (int i = 0; i < n; i++) {
        if (repeated.isPrimitive()) {
          out[i] = primitive(list, 0, i, repeated.asPrimitiveType());
        } else {
          Group element = list.getGroup(0, i);
          GroupType elementType = element.getType();
          if (elementType.getFieldCount() != 1 || !elementType.getType(0).isPrimitive()) {
            throw fail(where + ": column \"" + column + "\" is not a list of numbers or strings", null);
          }
          if (element.getFieldRepetitionCount(0) == 0) {
            throw fail(where + ": column \"" + column + "\" holds a null", null);
          }
          out[i] = primitive(element, 0, 0, elementType.getType(0).asPrimitiveType());
        }
      }
      return out;
    }

    private static Object primitive(Group g, int field, int index, PrimitiveType type) {
      switch (type.getPrimitiveTypeName()) {
        case BINARY:
        case FIXED_LEN_BYTE_ARRAY:
          return g.getString(field, index);
        case FLOAT:
          return g.getFloat(field, index);
        case DOUBLE:
          return g.getDouble(field, index);
        case INT32:
          return g.getInteger(field, index);
        case INT64:
          return g.getLong(field, index);
        default:
          return null;
      }
    }

    @Override
    public void close() {
      try {
        reader.close();
      } catch (IOException e) {
        // nothing to do
      }
      super.close();
    }
  }
}
