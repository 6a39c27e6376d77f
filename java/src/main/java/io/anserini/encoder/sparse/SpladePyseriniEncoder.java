package io.anserini.encoder.sparse;

import ai.djl.modality.nlp.DefaultVocabulary;
import ai.djl.modality.nlp.bert.BertFullTokenizer;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A query encoder exported by {@code splade-pyserini export-onnx}, for stock Anserini:
 * {@code SearchCollection -impact -pretokenized -encoder SpladePyserini} (Pyserini: {@code --onnx-encoder
 * SpladePyserini}), with the exported folder named by the system property {@code -Dsplade.onnx=DIR} or the
 * environment variable {@code SPLADE_PYSERINI_ONNX}. Nothing is ever downloaded.
 *
 * <p>The folder holds {@code model.onnx} (input {@code input_ids} [1, length]; outputs {@code output_idx},
 * {@code output_weights}: the query's SPLADE vector with the model's variant rule applied), {@code vocab.txt} and
 * {@code splade_onnx.json} (scale, query length limit, lower-casing). The query is tokenised with WordPiece
 * ([CLS], at most {@code query_max_length - 2} word pieces, [SEP]) and each weight is quantised as splade-pyserini
 * does, {@code floor(w * scale + 0.5)} in double precision, zeros dropped; no token id is dropped beyond the
 * model's own rule (splade-pyserini keeps every positive weight), so the integer weights are the package's.
 * Thread-safe: Anserini encodes queries from several threads with one instance.
 */
public class SpladePyseriniEncoder extends SparseEncoder {
  public static final String PROPERTY = "splade.onnx";
  public static final String ENVIRONMENT = "SPLADE_PYSERINI_ONNX";
  static final String MODEL_FILE = "model.onnx";
  static final String VOCAB_FILE = "vocab.txt";
  static final String CONFIG_FILE = "splade_onnx.json";

  private final double scale;
  private final int maxLength;
  private final long clsId;
  private final long sepId;
  private final String[] tokens;
  private final BertFullTokenizer wordPiece;

  public SpladePyseriniEncoder() throws IOException, OrtException, URISyntaxException {
    super(5, 256, MODEL_FILE, "", VOCAB_FILE, "", null);  // quantisation is this class's own (see encode)
    JsonNode config = new ObjectMapper().readTree(folder().resolve(CONFIG_FILE).toFile());
    this.scale = config.get("scale").asDouble();
    this.maxLength = config.get("query_max_length").asInt();
    boolean lowercase = config.path("lowercase").asBoolean(true);
    this.wordPiece = lowercase ? tokenizer : new BertFullTokenizer(vocab, false);
    this.clsId = vocab.getIndex(config.path("cls_token").asText(CLS));
    this.sepId = vocab.getIndex(config.path("sep_token").asText(SEP));
    List<String> lines = Files.readAllLines(folder().resolve(VOCAB_FILE), StandardCharsets.UTF_8);
    this.tokens = lines.toArray(new String[0]);
  }

  /** The exported folder: {@code -Dsplade.onnx}, else {@code SPLADE_PYSERINI_ONNX}; it must hold the three files. */
  public static Path folder() throws IOException {
    String where = System.getProperty(PROPERTY);
    if (where == null || where.isBlank()) {
      where = System.getenv(ENVIRONMENT);
    }
    if (where == null || where.isBlank()) {
      throw fail("no exported model: set -D" + PROPERTY + "=DIR or " + ENVIRONMENT
          + "=DIR (write DIR with: splade-pyserini export-onnx --encoder E --output DIR)");
    }
    Path dir = Path.of(where).toAbsolutePath();
    for (String name : new String[] {CONFIG_FILE, MODEL_FILE, VOCAB_FILE}) {
      if (!Files.isRegularFile(dir.resolve(name))) {
        throw fail(dir + " has no " + name + "; write it with: splade-pyserini export-onnx --encoder E --output " + dir);
      }
    }
    return dir;
  }

  private static IOException fail(String message) {
    // SearchCollection replaces a failing encoder's exception by a bare RuntimeException: say it here too.
    System.err.println("SpladePyseriniEncoder: " + message);
    return new IOException(message);
  }

  @Override
  public Path getModelPath() throws IOException {
    return folder().resolve(MODEL_FILE);
  }

  @Override
  public Path getVocabPath() throws IOException {
    return folder().resolve(VOCAB_FILE);
  }

  /** [CLS], the query's word pieces (at most query_max_length - 2 of them), [SEP]. */
  @Override
  public long[] tokenizeToIds(String query) {
    List<String> pieces = wordPiece.tokenize(query);
    int n = Math.min(pieces.size(), Math.max(0, maxLength - 2));
    long[] ids = new long[n + 2];
    ids[0] = clsId;
    for (int i = 0; i < n; i++) {
      ids[i + 1] = vocab.getIndex(pieces.get(i));
    }
    ids[n + 1] = sepId;
    return ids;
  }

  /** The query's weights before quantisation, {token: weight} in vocabulary order (double precision). */
  public Map<String, Double> computeWeights(String query) throws OrtException {
    long[][] ids = {tokenizeToIds(query)};
    Map<String, Double> out = new LinkedHashMap<>();
    try (OnnxTensor input = OnnxTensor.createTensor(environment, ids);
         OrtSession.Result result = session.run(Map.of("input_ids", input))) {
      long[] idx = (long[]) result.get(0).getValue();
      Object values = result.get(1).getValue();
      for (int i = 0; i < idx.length; i++) {
        double w = values instanceof double[] d ? d[i] : ((float[]) values)[i];
        out.put(tokens[(int) idx[i]], w);
      }
    }
    return out;
  }

  @Override
  protected Map<String, Float> computeFloatWeights(String query) throws OrtException {
    Map<String, Float> out = new LinkedHashMap<>();
    computeWeights(query).forEach((token, w) -> out.put(token, (float) w.doubleValue()));
    return out;
  }

  /** {token: round(w * scale)}, halves up, in double precision (as splade-pyserini), zeros dropped. */
  @Override
  public Map<String, Integer> encode(String query) throws OrtException {
    Map<String, Integer> out = new LinkedHashMap<>();
    computeWeights(query).forEach((token, w) -> {
      int q = (int) Math.floor(w * scale + 0.5);
      if (q != 0) {
        out.put(token, q);
      }
    });
    return out;
  }

  /**
   * Pre-encoded impact topics from raw ones: reads {@code qid<TAB>text} lines on standard input and prints
   * {@code qid<TAB>token token …} (each token repeated weight times, as SearchCollection -pretokenized reads them).
   */
  public static void main(String[] args) throws Exception {
    try (SpladePyseriniEncoder encoder = new SpladePyseriniEncoder();
         java.io.BufferedReader in = new java.io.BufferedReader(
             new java.io.InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      java.io.PrintStream out = new java.io.PrintStream(System.out, false, StandardCharsets.UTF_8);
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        int tab = line.indexOf('\t');
        if (line.isBlank() || tab < 0) {
          continue;
        }
        out.println(line.substring(0, tab) + "\t" + flatten(encoder.encode(line.substring(tab + 1))));
      }
      out.flush();
    }
  }

  /** {@code [token, weight, token, weight, …]} of each query, for callers across JNI (one call for many). */
  public String[][] encodeAll(String[] queries) throws OrtException {
    String[][] out = new String[queries.length][];
    for (int q = 0; q < queries.length; q++) {
      List<String> flat = new ArrayList<>();
      encode(queries[q]).forEach((token, w) -> {
        flat.add(token);
        flat.add(Integer.toString(w));
      });
      out[q] = flat.toArray(new String[0]);
    }
    return out;
  }
}
