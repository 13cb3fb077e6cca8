package org.bnntf.demo;

import android.graphics.Bitmap;
import android.graphics.BitmapFactory;
import android.net.Uri;
import android.os.Bundle;
import android.os.Handler;
import android.os.Looper;
import android.widget.Button;
import android.widget.ImageView;
import android.widget.TextView;
import androidx.activity.result.ActivityResultLauncher;
import androidx.activity.result.contract.ActivityResultContracts;
import androidx.appcompat.app.AppCompatActivity;
import java.io.IOException;
import java.io.InputStream;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.bnntf.demo.core.Prediction;
import org.bnntf.demo.core.Preprocessor;

/** Pick an image (gallery) or take one (camera), classify it, show top-3 and the latency. */
public class MainActivity extends AppCompatActivity {
  private static final int THREADS = 1;
  private static final int TIMED_RUNS = 10;

  // One background thread: the interpreter is not thread-safe, and the UI thread must not block.
  private final ExecutorService worker = Executors.newSingleThreadExecutor();
  private final Handler main = new Handler(Looper.getMainLooper());
  private LceClassifier classifier;
  private ImageView imageView;
  private TextView resultView;

  private final ActivityResultLauncher<String> pickImage =
      registerForActivityResult(new ActivityResultContracts.GetContent(), this::onPicked);
  private final ActivityResultLauncher<Void> takePhoto =
      registerForActivityResult(new ActivityResultContracts.TakePicturePreview(), this::classify);

  @Override
  protected void onCreate(Bundle savedInstanceState) {
    super.onCreate(savedInstanceState);
    setContentView(R.layout.activity_main);
    imageView = findViewById(R.id.image);
    resultView = findViewById(R.id.result);
    Button gallery = findViewById(R.id.gallery);
    Button camera = findViewById(R.id.camera);
    gallery.setOnClickListener(v -> pickImage.launch("image/*"));
    camera.setOnClickListener(v -> takePhoto.launch(null));
    worker.execute(
        () -> {
          try {
            LceClassifier c = new LceClassifier(this, THREADS);
            main.post(() -> onModelLoaded(c));
          } catch (IOException | RuntimeException e) {
            // A model with LCE ops on the stock TFLite AAR fails here ("Encountered unresolved
            // custom op: LceBconv2d"): say what to do instead of crashing.
            main.post(() -> resultView.setText(getString(R.string.load_failed, e.getMessage())));
          }
        });
  }

  private void onModelLoaded(LceClassifier c) {
    classifier = c;
    resultView.setText(
        getString(
            R.string.model_loaded,
            c.metadata.modelName,
            c.metadata.binaryConvs,
            c.metadata.requiresLce ? "LCE" : "TFLite"));
  }

  private void onPicked(Uri uri) {
    if (uri == null) {
      return;
    }
    try (InputStream in = getContentResolver().openInputStream(uri)) {
      classify(BitmapFactory.decodeStream(in));
    } catch (IOException e) {
      resultView.setText(getString(R.string.read_failed, e.getMessage()));
    }
  }

  private void classify(Bitmap bitmap) {
    if (bitmap == null) {
      return;
    }
    imageView.setImageBitmap(bitmap);
    if (classifier == null) {
      resultView.setText(R.string.not_loaded);
      return;
    }
    final LceClassifier c = classifier;
    worker.execute(
        () -> {
          LceClassifier.Result r = c.classify(bitmap, Preprocessor.InvertMode.AUTO, TIMED_RUNS);
          StringBuilder sb = new StringBuilder();
          for (int i = 0; i < r.top.size(); i++) {
            Prediction p = r.top.get(i);
            sb.append(i + 1).append(". ").append(p.format()).append('\n');
          }
          sb.append(
              String.format(
                  Locale.ROOT,
                  "latency: %.2f ms (median of %d runs, %d thread)%s",
                  r.latencyMs,
                  r.runs,
                  THREADS,
                  r.inverted ? "\ninput inverted (light background)" : ""));
          main.post(() -> resultView.setText(sb.toString()));
        });
  }

  @Override
  protected void onDestroy() {
    worker.execute(
        () -> {
          if (classifier != null) {
            classifier.close();
          }
        });
    worker.shutdown();
    super.onDestroy();
  }
}
