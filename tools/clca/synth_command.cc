// clca synth: a synthetic ultra-fine-grained leaf dataset in the UFG layout.
#include <algorithm>
#include <iostream>
#include <memory>
#include <vector>

#include "absl/strings/str_format.h"
#include "tools/clca/commands.h"
#include "tools/clca/util.h"
#ifdef CLCA_HAVE_SYNTH
#include "tools/synth/dataset_writer.h"
#endif

namespace clca::tool {
namespace {

struct SynthArgs {
  std::string out;
  int classes = 10;
  int train_per_class = 3;
  int test_per_class = 3;
  uint64_t seed = 1;
  uint64_t cultivar_seed = 2025;
  int size = 320;
  int threads = 0;
#ifdef CLCA_HAVE_SYNTH
  // Generator settings exposed as flags; their defaults are the generator's.
  synth::SynthDatasetOptions options;
  std::vector<double> leaf_length;  // min, max; empty: the renderer's default
  std::vector<double> trait_region;  // start, end; empty: the whole blade
#endif
};

int Synth(const SynthArgs& a) {
#ifdef CLCA_HAVE_SYNTH
  synth::SynthDatasetOptions options = a.options;
  options.out_dir = a.out;
  options.num_classes = a.classes;
  options.train_per_class = a.train_per_class;
  options.test_per_class = a.test_per_class;
  options.seed = a.seed;
  options.cultivars.cultivar_seed = a.cultivar_seed;
  options.render.size = a.size;
  if (!a.leaf_length.empty()) {
    options.render.min_leaf_length = a.leaf_length[0];
    options.render.max_leaf_length = a.leaf_length[1];
  }
  if (!a.trait_region.empty()) {
    options.render.trait_region_start = a.trait_region[0];
    options.render.trait_region_end = a.trait_region[1];
  }
  options.threads = a.threads;
  auto summary = synth::WriteSynthDataset(options);
  if (!summary.ok()) return Fail(summary.status());
  std::cout << absl::StrFormat("wrote %d images of %d cultivars to %s in %.2f s (%.2f ms/image)\n",
                               summary->images, a.classes, a.out, summary->seconds,
                               1e3 * summary->seconds / std::max(1, summary->images));
  return 0;
#else
  return Fail(absl::UnimplementedError("this build has no dataset synthesis (OpenCV not found)"));
#endif
}

}  // namespace

void AddSynthCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<SynthArgs>();
  CLI::App* cmd = app.add_subcommand(
      "synth", "Write a synthetic ultra-fine-grained leaf dataset (UFG CSV layout)");
  cmd->add_option("--out", a->out, "output directory")->required();
  cmd->add_option("--classes", a->classes, "number of cultivars K")->capture_default_str();
  cmd->add_option("--train-per-class", a->train_per_class, "train images per cultivar")
      ->capture_default_str();
  cmd->add_option("--test-per-class", a->test_per_class, "test images per cultivar")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "seed of the per-image nuisances")->capture_default_str();
  cmd->add_option("--cultivar-seed", a->cultivar_seed, "seed of the cultivar traits")
      ->capture_default_str();
  cmd->add_option("--size", a->size, "image side in pixels")->capture_default_str();
  cmd->add_option("--threads", a->threads, "worker threads (0: all cores)")->capture_default_str();
#ifdef CLCA_HAVE_SYNTH
  synth::SynthDatasetOptions& o = a->options;
  cmd->add_option("--family-size", o.cultivars.family_size,
                  "sibling cultivars per family (1: every cultivar has its own trait centre, an "
                  "easier task)")
      ->capture_default_str();
  cmd->add_option("--family-spread", o.cultivars.family_spread,
                  "family trait centres are uniform in 0.5 +- this on every normalised trait, in "
                  "[0, 0.5] (larger: cultivars further apart, an easier task)")
      ->capture_default_str();
  cmd->add_option("--detail-length", o.render.detail_length,
                  "pixels per detail unit, the scale of veins, teeth, texture and spots at --size "
                  "320, in (0, 2]")
      ->capture_default_str();
  cmd->add_option("--colour-jitter", o.render.colour_jitter,
                  "width of the leaf-colour and lighting nuisances, fraction of their full ranges "
                  "in [0, 1]")
      ->capture_default_str();
  cmd->add_flag("--scanner-background", o.render.scanner_background,
                "always a pale paper or scanner bed under the leaf, as in scanned-leaf datasets");
  cmd->add_option("--texture-contrast", o.render.texture_contrast,
                  "multiplier of the surface network's contrast, in [0, 8] (larger: cultivars "
                  "easier to learn)")
      ->capture_default_str();
  cmd->add_option("--leaf-length", a->leaf_length,
                  "MIN MAX: leaf length (base to tip) as a fraction of the image side, uniform per "
                  "image, 0 < MIN <= MAX <= 2 (default 0.55 0.82; above 1 the leaf is cropped and "
                  "fills the frame)")
      ->expected(2);
  cmd->add_option("--trait-region", a->trait_region,
                  "START END: the stretch of the blade, base 0 to tip 1, where cultivars differ; "
                  "elsewhere every leaf looks alike, so a model must find that stretch (default "
                  "0 1: the whole blade)")
      ->expected(2);
  cmd->add_option("--max-rotation", o.render.max_rotation_deg,
                  "largest turn of the leaf from upright, degrees in [0, 180] (180: any "
                  "orientation)")
      ->capture_default_str();
  cmd->add_option("--max-clutter", o.render.max_clutter, "most background clutter shapes")
      ->capture_default_str();
  cmd->add_option("--occlusion-probability", o.render.occlusion_probability,
                  "chance that an image has an occluding shape")
      ->capture_default_str();
#endif
  cmd->callback([a, exit_code] { *exit_code = Synth(*a); });
}

}  // namespace clca::tool
