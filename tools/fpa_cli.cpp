// fpa_cli.cpp: the `fpa` command line: a table of verbs (tools/cli_verbs.h), each with its
// own --help, plus --version (each device and its backend) and `ops` (the registered ops).
#include <fmt/format.h>

#include <cstring>
#include <new>
#include <string>

#include "autograd/error.h"
#include "ops/backend/backend.h"
#include "ops/registry.h"
#include "tools/cli_verbs.h"

namespace {

using fpa::cli::Args;

int list_ops(const Args& a) {
  a.finish();
  for (const fpa::OpInfo& op : fpa::registered_ops()) fmt::print("{}\n", op.name);
  return 0;
}

const char* kConfigFlags =
    "  --preset P            paper-rgb64-T64 | paper-rgb64-T16 | grey32-T32 (each also with +unet)\n"
    "  --KEY VALUE           any configuration key overrides the preset: --steps 16, --hidden 512,\n"
    "                        --image_size 32, --d.fmap_max 64, --model v1 ... (see fpa/config.h)\n";

const fpa::cli::Verb kVerbs[] = {
    {"ops", "list the registered ops, one per line", "", list_ops, false},
    {"params", "print every parameter's name and shape (as params-*.txt) and the totals",
     "  (model flags below; default preset paper-rgb64-T64)\n", fpa::cli::params, true},
    {"generate", "run a generator checkpoint on latents: z (B, L) -> images (B, C, S, S)",
     "  --ckpt C.safetensors   weights (G.*, GE.*) with reference names; config from its metadata\n"
     "  --latents Z.safetensors  tensor 'z' (B, L)\n"
     "  --out O.safetensors    writes tensor 'images', the raw output after the final tanh\n"
     "  --ema                  use the EMA generator GE.* instead of G.*\n"
     "  --dtype float32|float64\n",
     fpa::cli::generate, true},
    {"discriminate", "run a discriminator checkpoint on images -> logits, logits32, aux_loss",
     "  --ckpt C.safetensors   weights (D.*) with reference names; config from its metadata\n"
     "  --images X.safetensors tensor 'images' (B, C, S, S)\n"
     "  --out O.safetensors    writes 'logits' (B, 1), 'logits32' (B, 1, 1, 1), 'aux_loss' (1,)\n"
     "  --dtype float32|float64\n",
     fpa::cli::discriminate, true},
    {"train", "train a Fast Weight Painter GAN (default: cpu-small on Fashion-MNIST)",
     "  --data fashion-mnist|DIR   the embedded Fashion-MNIST (default) or a folder of PNG/JPEG images\n"
     "  --size N               image side (must agree with the preset; power of two)\n"
     "  --steps N              train until N steps in total (the painter's T is --g.steps)\n"
     "  --batch N\n"
     "  --out DIR              run folder (default runs/default): last.safetensors, samples.png,\n"
     "                         painting_steps.png, painting.gif, interpolation.png, metrics.csv,\n"
     "                         loss_curve.svg\n"
     "  --resume               continue DIR/last.safetensors to --steps: the same command with --resume\n"
     "                         added (a flag whose value differs from the checkpoint is refused)\n"
     "  --seed N  --device cpu|cuda  --lr X  --beta1 X  --beta2 X  --aug-prob P  --grad-accumulate N\n"
     "  --gp-every N (0: no penalty)  --gp-weight X  --ema-beta X  --ema-every N (0: no EMA)\n"
     "  --ema-start N  --ema-reset-until N  --init-from CKPT (U-Net model)\n"
     "  --sample-every N  --checkpoint-every N  (0: at the end only)  --log-every N (0: no log lines)\n"
     "  --nan-retries N        on a NaN/inf loss, reload the last checkpoint and retry with other random\n"
     "                         draws up to N times (default 0: stop at once, exit code 3); a checkpoint\n"
     "                         is never written over with non-finite weights\n"
     "                         SIGINT (Ctrl-C) and SIGTERM save a checkpoint and exit; a second one exits\n"
     "                         at once without saving. One run per --out folder (DIR/.lock)\n"
     "  --fid-every N  --fid-n M  FID and KID of M images of the EMA generator every N steps (and at the\n"
     "                         end) against up to 10,000 images of --data (features cached): columns of\n"
     "                         metrics.csv, fid_curve.svg, and best.safetensors, the checkpoint of the\n"
     "                         best FID so far (needs make fid-weights)\n"
     "  --no-graph             on CUDA, run every step eagerly instead of replaying a CUDA graph\n"
     "  --no-tf32              on CUDA, float32 convolutions and the LSTM in strict FP32 (default: TF32,\n"
     "                         as PyTorch's cuDNN defaults; other GEMMs are always FP32)\n",
     fpa::cli::train, true},
    {"sample", "a grid of samples from a checkpoint's EMA generator",
     "  --ckpt C  --out grid.png  [--n 64] [--seed N] [--no-ema]\n", fpa::cli::sample, false},
    {"paint", "the painting steps (updates above partial images) as PNG, or the painting as GIF",
     "  --ckpt C  --out steps.png|steps.gif  [--n 4] [--seed N] [--no-ema]\n", fpa::cli::paint, false},
    {"fid", "FID and KID (Inception features, in the engine) of a checkpoint's samples or of two image sets",
     "  --ckpt C [--ema] [--data fashion-mnist|fashion-mnist-test|DIR] [--n 10000] [--real-n 10000]\n"
     "                         N generated images (GE with --ema, else G) against the dataset at the\n"
     "                         model's size; the dataset's features are cached (FPA_CACHE_DIR/fid)\n"
     "  --real A --fake B [--size 32] [--n N]  two image sets: dataset sources or .safetensors files\n"
     "                         with tensor 'images' (N, C, H, W) in [0, 1]\n"
     "  --seed N  --weights W  (default: make fid-weights' file, or $FPA_FID_WEIGHTS)\n",
     fpa::cli::fid, false},
    {"interpolate", "a strip of images along a line between two latents",
     "  --ckpt C  --out strip.png  [--count 10] [--seed N] [--no-ema]\n", fpa::cli::interpolate, false},
};

void print_usage() {
  fmt::print("usage: fpa <command> [--flags]   (fpa <command> --help for its flags)\n");
  fmt::print("  {:<14} {}\n", "--version", "the version, and each device with its backend or why it has none");
  for (const auto& v : kVerbs) fmt::print("  {:<14} {}\n", v.name, v.summary);
}

void print_version() {
  fmt::print("fpa 0.1.0 (Fast Weight Painters engine)\n");
  for (int i = 0; i < fpa::kDeviceCount; ++i) {
    const auto device = static_cast<fpa::Device>(i);
    if (!fpa::has_backend(device)) {
      fmt::print("{}: not available: {}\n", fpa::kDeviceNames[i], fpa::missing_backend_reason(device));
      continue;
    }
    const fpa::Backend& b = fpa::backend(device);
    fmt::print("{}: {}\n", fpa::kDeviceNames[i], b.summary ? b.summary() : "available");
  }
}

// An error message as printed: messages of the CLI itself already begin "fpa VERB: "; the
// library's ("train: ...", "--lr must be ...") get that prefix.
std::string with_prefix(const std::string& message, const std::string& verb) {
  if (message.rfind("fpa ", 0) == 0 || message.rfind("fpa: ", 0) == 0) return message;
  return "fpa" + (verb.empty() ? std::string() : " " + verb) + ": " + message;
}

}  // namespace

int main(int argc, char** argv) {
  std::string verb;
  try {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
      print_usage();
      return argc < 2 ? 2 : 0;
    }
    std::string cmd = argv[1];
    if (cmd == "--version") {
      print_version();
      return 0;
    }
    for (const auto& v : kVerbs) {
      if (cmd != v.name) continue;
      verb = v.name;
      Args args(argc, argv, 2, v.name);
      if (args.help()) {
        fmt::print("fpa {}: {}\n{}", v.name, v.summary, v.usage);
        if (v.model_flags) fmt::print("{}", kConfigFlags);
        return 0;
      }
      return v.run(args);
    }
    fmt::print(stderr, "fpa: unknown command '{}'\n", cmd);
    print_usage();
    return 2;
  } catch (const fpa::Error& e) {
    fmt::print(stderr, "{}\n", with_prefix(e.what(), verb));
    return 1;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "{}\n", with_prefix("out of memory", verb));
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}\n", with_prefix(std::string("unexpected error: ") + e.what(), verb));
    return 1;
  } catch (...) {
    fmt::print(stderr, "{}\n", with_prefix("unexpected error of unknown type", verb));
    return 1;
  }
}
