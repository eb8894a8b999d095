// clca bench: in-process timing of a configuration over keep rates, batch
// sizes and precisions, next to the GEMM throughput of this machine.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <numeric>
#include <thread>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "models/core/errors.h"
#include "models/core/layers.h"
#include "models/cpu/process_setup.h"
#include "models/cpu/threads.h"
#include "models/exec/batch_runner.h"
#include "models/vit/cost.h"
#include "models/vit/model.h"
#include "tools/clca/commands.h"
#include "tools/clca/util.h"

namespace clca::tool {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  ConfigFlags config;
  std::vector<double> keep_rates = {0.1, 0.25, 0.5, 0.7, 1.0};
  std::vector<int> batches = {1, 8};
  std::vector<std::string> dtypes = {"fp32"};
  int threads = 0, streams = 1, warmup = 2, repeats = 5;
  double min_seconds = 0.5;
  int64_t attention_group_bytes = ModelOptions{}.attention_group_bytes;
  std::string linear = "onednn";
  std::string device = "cpu", attention = "fused";
  bool json = false;
  // Rows per batch size and layout instead of one per keep rate: image i
  // of a batch at keep_rates[i % n], in one mixed forward pass ("mixed") or
  // one pass per keep rate ("grouped"); then batches of one keep rate, the
  // mean of keep_rates and the highest.
  bool mixed = false;
  // On a GPU: time batches of one keep rate through a BatchRunner replaying
  // CUDA graphs (captured before timing) instead of eager forward passes.
  bool cuda_graphs = false;
};

struct Timing {
  double median = 0, min = 0, max = 0;  // seconds per call
};

// Calls each of `calls` once a round, timing each: `warmup` untimed rounds,
// then rounds until every call has `repeats` timings and `min_seconds` have
// passed for each (at most 200 rounds). Each call's median, min and max;
// `rounds` (if not null) gets each timed round's times.
std::vector<Timing> MeasureInTurn(const std::vector<std::function<void()>>& calls, int warmup,
                                  int repeats, double min_seconds,
                                  std::vector<std::vector<double>>* rounds = nullptr) {
  for (int i = 0; i < warmup; ++i) {
    for (const auto& call : calls) call();
  }
  std::vector<std::vector<double>> t(calls.size());
  const auto begin = Clock::now();
  const double total = min_seconds * static_cast<double>(calls.size());
  while (static_cast<int>(t.front().size()) < repeats ||
         std::chrono::duration<double>(Clock::now() - begin).count() < total) {
    std::vector<double> round;
    for (size_t i = 0; i < calls.size(); ++i) {
      const auto start = Clock::now();
      calls[i]();
      round.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      t[i].push_back(round.back());
    }
    if (rounds != nullptr) rounds->push_back(round);
    if (t.front().size() >= 200) break;
  }
  std::vector<Timing> timings;
  for (std::vector<double>& times : t) {
    std::sort(times.begin(), times.end());
    timings.push_back({times[times.size() / 2], times.front(), times.back()});
  }
  return timings;
}

// Median, min and max over `repeats` timed calls after `warmup` untimed ones;
// more calls are made while the total stays under `min_seconds`.
Timing Measure(const std::function<void()>& call, int warmup, int repeats, double min_seconds) {
  return MeasureInTurn({call}, warmup, repeats, min_seconds).front();
}

// Throughput of `streams` threads calling `call(stream)` side by side, each
// on its own `threads` intra-op threads, as a server's batch workers do: every
// stream makes `warmup` calls, then all run until each has made `repeats`
// calls and `min_seconds` have passed. median/min/max: seconds per call of
// one stream, divided by `streams` (the time the machine spends per call).
template <typename F>
Timing MeasureStreams(F&& call, int streams, int threads, int warmup, int repeats,
                      double min_seconds) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::vector<double>> times(streams);
  Clock::time_point begin;
  std::vector<std::thread> workers;
  for (int s = 0; s < streams; ++s) {
    workers.emplace_back([&, s] {
      if (threads > 0) SetIntraOpThreads(threads);
      c10::InferenceMode guard;
      for (int i = 0; i < warmup; ++i) call(s);
      ++ready;
      while (!go.load()) std::this_thread::yield();
      while (static_cast<int>(times[s].size()) < repeats ||
             std::chrono::duration<double>(Clock::now() - begin).count() < min_seconds) {
        const auto start = Clock::now();
        call(s);
        times[s].push_back(std::chrono::duration<double>(Clock::now() - start).count());
        if (times[s].size() >= 200) break;
      }
    });
  }
  while (ready.load() < streams) std::this_thread::yield();
  begin = Clock::now();
  go = true;
  for (std::thread& w : workers) w.join();
  const double wall = std::chrono::duration<double>(Clock::now() - begin).count();
  std::vector<double> all;
  size_t calls = 0;
  for (const auto& t : times) {
    calls += t.size();
    for (double x : t) all.push_back(x / streams);
  }
  std::sort(all.begin(), all.end());
  // The median is the wall time per call: streams overlap, so their own call
  // times divided by `streams` understate it when they slow each other.
  return {wall / static_cast<double>(calls), all.front(), all.back()};
}

absl::StatusOr<torch::ScalarType> ParseDtype(const std::string& d, Precision* p) {
  if (d == "fp32") { *p = Precision::kFloat32; return torch::kFloat32; }
  if (d == "bf16") { *p = Precision::kBFloat16; return torch::kBFloat16; }
  if (d == "fp16") { *p = Precision::kFloat16; return torch::kFloat16; }
  return absl::InvalidArgumentError(absl::StrCat("unknown dtype '", d, "' (fp32, bf16, fp16)"));
}

// GFLOP/s of one matrix product with the model's MLP shape (tokens x C times
// C x 4C): with LibTorch's BLAS, and with oneDNN (0 where the model would not
// use it). The faster is the bound every figure is compared with.
struct Gemm {
  double blas = 0, onednn = 0;
  double best() const { return std::max(blas, onednn); }
};

// Waits for the device's queued work (a no-op on the CPU): GPU calls return
// before their kernels ran.
void Synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

Gemm GemmGflops(int64_t rows, int64_t dim, int64_t hidden, torch::ScalarType dtype,
                const torch::Device& device, const BenchArgs& a) {
  auto options = torch::TensorOptions().dtype(dtype).device(device);
  LinearWeights linear;
  linear.weight = torch::randn({hidden, dim}, options);
  linear.bias = torch::randn({hidden}, options);
  torch::Tensor x = torch::randn({rows, dim}, options);
  c10::InferenceMode guard;
  // On a GPU one product takes microseconds: time a run of them, so that the
  // launch and the synchronisation do not count.
  const int run = device.is_cuda() ? 20 : 1;
  const double flop = 2.0 * rows * dim * hidden * run;
  Gemm gemm;
  gemm.blas = flop / Measure([&] {
                       for (int i = 0; i < run; ++i) at::linear(x, linear.weight, linear.bias);
                       Synchronize(device);
                     }, a.warmup, a.repeats, a.min_seconds).median * 1e-9;
  if (linear.PrepareOneDnn()) {
    gemm.onednn = flop / Measure([&] { linear(x); }, a.warmup, a.repeats, a.min_seconds).median *
                  1e-9;
  }
  return gemm;
}

int Bench(const BenchArgs& a) {
  auto config = ResolveConfigFlags(a.config);
  if (!config.ok()) return Fail(config.status());
  if (a.streams < 1) return Fail(absl::InvalidArgumentError("--streams must be at least 1"));
  torch::Device device = torch::kCPU;
  try {
    device = torch::Device(a.device);
  } catch (const std::exception& e) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("--device: ", ExceptionMessage(e))));
  }
  // Several streams compute side by side: each matrix product stays on its
  // stream's own threads.
  // Unless given, streams share the cores (as clca-server's workers do).
  const int threads = a.threads > 0 ? a.threads : std::max(1, HardwareThreads() / a.streams);
  if (a.streams > 1) {
    SetBlasThreads(threads);
    // The streams' threads alone compute in teams: libgomp stops spinning at
    // its barriers once it manages more threads than there are cores.
    SetIntraOpThreads(1);
  } else {
    SetComputeThreads(threads);
  }
  const int stream_threads = a.streams > 1 ? threads : torch::get_num_threads();
  // Runs `f` as a stream computes: on this thread with one stream, else on a
  // thread of its own with a stream's intra-op threads (its team ends with it).
  auto as_stream = [&](auto&& f) {
    if (a.streams == 1) return f();
    std::thread t([&] {
      SetIntraOpThreads(threads);
      f();
    });
    t.join();
  };
  int parallel_for_threads = 0;
  as_stream([&] { parallel_for_threads = ParallelForWidth(); });
  if (device.is_cpu() && parallel_for_threads < stream_threads) {
    std::fprintf(stderr,
                 "warning: the model library's parallel loops run on %d of %d threads (built "
                 "without OpenMP?)\n",
                 parallel_for_threads, stream_threads);
  }

  nlohmann::json results = nlohmann::json::array();
  nlohmann::json gemm = nlohmann::json::object();
  nlohmann::json gemm_blas = nlohmann::json::object();
  nlohmann::json gemm_onednn = nlohmann::json::object();
  std::string text = absl::StrFormat(
      "%s @%d on %s, %d thread%s%s\n%-6s %-5s %-5s %10s %10s %8s %9s %8s %s\n", config->model,
      config->input_size, device.str(), stream_threads, stream_threads == 1 ? "" : "s",
      a.streams > 1 ? absl::StrFormat(" x %d streams", a.streams) : "", "dtype", "batch", "kr", "ms/image",
      "images/s", "GMACs", "GFLOP/s", "of GEMM", "spread");
  const int64_t hidden = static_cast<int64_t>(config->embed_dim * config->mlp_ratio);
  for (const std::string& d : a.dtypes) {
    Precision precision = Precision::kFloat32;
    auto dtype = ParseDtype(d, &precision);
    if (!dtype.ok()) return Fail(dtype.status());
    ModelOptions options;
    options.precision = precision;
    options.attention_group_bytes = a.attention_group_bytes;
    options.onednn_linear = a.linear == "onednn";
    options.fused_attention = a.attention == "fused";
    options.device = device.str();
    auto model = ClcaModel::CreateRandom(*config, 0, options);
    if (!model.ok()) return Fail(model.status());
    const bool graphs = a.cuda_graphs && device.is_cuda() && !a.mixed;
    // With several streams the bound is one stream's product times their
    // number: each stream has its own cores.
    Gemm one_stream;
    as_stream([&] {
      one_stream = GemmGflops(8 * (config->num_patches() + 1), config->embed_dim, hidden, *dtype,
                              device, a);
    });
    const double gemm_gflops = one_stream.best() * a.streams;
    gemm[d] = gemm_gflops;
    gemm_blas[d] = one_stream.blas * a.streams;
    gemm_onednn[d] = one_stream.onednn * a.streams;
    absl::StrAppendFormat(&text, "GEMM %s [%d x %d] x [%d x %d]: %.1f GFLOP/s BLAS", d,
                          8 * (config->num_patches() + 1), config->embed_dim, config->embed_dim,
                          hidden, one_stream.blas);
    if (one_stream.onednn > 0) absl::StrAppendFormat(&text, ", %.1f oneDNN", one_stream.onednn);
    if (a.streams > 1) absl::StrAppendFormat(&text, ", x %d streams", a.streams);
    text += "\n";
    // Times `forward(stream)` as the streams run it; its first error, if any.
    auto time_calls =
        [&](const std::function<absl::Status(int)>& forward) -> absl::StatusOr<Timing> {
      std::vector<absl::Status> errors(a.streams);
      auto call = [&](int s) {
        if (absl::Status status = forward(s); !status.ok() && errors[s].ok()) errors[s] = status;
        Synchronize(device);
      };
      const Timing t =
          a.streams == 1
              ? Measure([&] { call(0); }, a.warmup, a.repeats, a.min_seconds)
              : MeasureStreams(call, a.streams, threads, a.warmup, a.repeats, a.min_seconds);
      for (const absl::Status& error : errors) {
        if (!error.ok()) return error;
      }
      return t;
    };
    for (int batch : a.batches) {
      std::vector<torch::Tensor> images;
      for (int s = 0; s < a.streams; ++s) {
        // On a GPU the images are already there: the model's time alone.
        images.push_back(torch::randn({batch, 3, config->input_size, config->input_size},
                                      torch::TensorOptions().device(device)));
      }
      if (a.mixed) {
        // Forward pass c gives image i the ((c * batch + i) mod n)-th keep
        // rate; one timed call is a cycle of passes that uses every keep rate
        // equally often. Beside it, the same number of passes of one keep
        // rate: the mix's mean (the same work) and its highest.
        const size_t n = a.keep_rates.size();
        const size_t cycle = n / std::gcd(n, static_cast<size_t>(batch));
        double mean_rate = 0;
        for (double kr : a.keep_rates) mean_rate += kr / static_cast<double>(n);
        const double max_rate = *std::max_element(a.keep_rates.begin(), a.keep_rates.end());
        struct Layout {
          std::string name;
          nlohmann::json keep_rate;
          double fixed_rate = 0;  // one keep rate for the whole batch; 0: the mix
          bool mixed = false;
          double macs = 0;  // per call
        };
        std::vector<Layout> layouts = {{"mixed", "mixed", 0, true},
                                       {"grouped", "grouped", 0, false},
                                       {absl::StrFormat("%.3g", mean_rate), mean_rate, mean_rate},
                                       {absl::StrFormat("%.3g", max_rate), max_rate, max_rate}};
        for (Layout& layout : layouts) {
          for (double kr : a.keep_rates) {
            auto cost = EstimateCost(*config, layout.fixed_rate > 0 ? layout.fixed_rate : kr);
            if (!cost.ok()) return Fail(cost.status());
            layout.macs += cost->macs / static_cast<double>(n);
          }
          layout.macs *= static_cast<double>(batch * cycle);
        }
        std::vector<size_t> calls(a.streams, 0);
        auto forward = [&](const Layout& layout, int s) -> absl::Status {
          if (layout.fixed_rate > 0) {
            for (size_t pass = 0; pass < cycle; ++pass) {
              if (auto r = (*model)->Forward(images[s], layout.fixed_rate); !r.ok()) {
                return r.status();
              }
            }
            return absl::OkStatus();
          }
          for (size_t pass = 0; pass < cycle; ++pass) {
            std::vector<double> rates;
            for (int i = 0; i < batch; ++i) {
              rates.push_back(a.keep_rates[(calls[s] * batch + i) % n]);
            }
            ++calls[s];
            if (layout.mixed) {
              if (auto r = (*model)->ForwardMixed(images[s], rates); !r.ok()) return r.status();
              continue;
            }
            std::map<double, std::vector<int64_t>> groups;
            for (int i = 0; i < batch; ++i) groups[rates[i]].push_back(i);
            for (const auto& [kr, members] : groups) {
              auto r = (*model)->Forward(
                  images[s].index_select(0, torch::tensor(members).to(device)), kr);
              if (!r.ok()) return r.status();
            }
          }
          return absl::OkStatus();
        };
        // One stream: the layouts' calls in turn, so that all see the same
        // machine, and each ratio taken within a round. Several streams: one
        // layout after another.
        std::vector<Timing> timings;
        std::vector<std::vector<double>> round_times;
        if (a.streams == 1) {
          absl::Status error;
          std::vector<std::function<void()>> in_turn;
          for (const Layout& layout : layouts) {
            in_turn.push_back([&, &layout = layout] {
              if (absl::Status s = forward(layout, 0); !s.ok() && error.ok()) error = s;
              Synchronize(device);
            });
          }
          timings = MeasureInTurn(in_turn, a.warmup, a.repeats, a.min_seconds, &round_times);
          if (!error.ok()) return Fail(error);
        } else {
          for (const Layout& layout : layouts) {
            absl::StatusOr<Timing> timed =
                time_calls([&](int s) { return forward(layout, s); });
            if (!timed.ok()) return Fail(timed.status());
            timings.push_back(*timed);
          }
        }
        // GFLOP/s of layout i against layout j: the median over rounds of
        // each round's ratio, else the ratio of the medians.
        auto relative = [&](size_t i, size_t j) {
          const double work = layouts[i].macs / layouts[j].macs;
          if (round_times.empty()) return work * timings[j].median / timings[i].median;
          std::vector<double> r;
          for (const auto& round : round_times) r.push_back(work * round[j] / round[i]);
          std::sort(r.begin(), r.end());
          return r.size() % 2 ? r[r.size() / 2] : (r[r.size() / 2 - 1] + r[r.size() / 2]) / 2;
        };
        const double images_per_call = static_cast<double>(batch * cycle);
        for (size_t i = 0; i < layouts.size(); ++i) {
          const Layout& layout = layouts[i];
          const Timing& t = timings[i];
          const double per_image = t.median / images_per_call;
          const double gflops = 2 * layout.macs / t.median * 1e-9;
          nlohmann::json point = {
              {"keep_rate", layout.keep_rate}, {"keep_rates", a.keep_rates}, {"batch", batch},
              {"dtype", d}, {"input_size", config->input_size},
              {"ms_per_image", per_image * 1e3}, {"images_per_s", 1.0 / per_image},
              {"gmacs", layout.macs / images_per_call * 1e-9}, {"gflops", gflops},
              {"gemm_ratio", gflops / gemm_gflops},
              {"ms_per_image_min", t.min / images_per_call * 1e3},
              {"ms_per_image_max", t.max / images_per_call * 1e3},
              {"of_mean_keep_rate", relative(i, 2)}, {"of_max_keep_rate", relative(i, 3)}};
          results.push_back(std::move(point));
          absl::StrAppendFormat(&text,
                                "%-6s %-5d %-7s %8.2f %10.1f %8.2f %9.1f %7.0f%% %.2f-%.2f ms",
                                d, batch, layout.name, per_image * 1e3, 1.0 / per_image,
                                layout.macs / images_per_call * 1e-9, gflops,
                                100 * gflops / gemm_gflops, t.min / images_per_call * 1e3,
                                t.max / images_per_call * 1e3);
          if (i < 2) {
            absl::StrAppendFormat(&text, "  %.3f of kr %s, %.3f of kr %s", relative(i, 2),
                                  layouts[2].name, relative(i, 3), layouts[3].name);
          } else if (i == 2) {
            absl::StrAppendFormat(&text, "  %.3f of kr %s", relative(i, 3), layouts[3].name);
          }
          text += "\n";
        }
        continue;
      }
      // One runner per stream, with each stream's images as a list.
      std::vector<std::unique_ptr<BatchRunner>> runners;
      std::vector<std::vector<torch::Tensor>> image_lists;
      if (graphs) {
        BatchRunnerOptions runner_options;
        runner_options.max_batch = batch;
        runner_options.max_graphs = static_cast<int>(a.keep_rates.size());
        for (int s = 0; s < a.streams; ++s) {
          auto runner = BatchRunner::Create(**model, runner_options);
          if (!runner.ok()) return Fail(runner.status());
          runners.push_back(*std::move(runner));
          image_lists.push_back(images[s].unbind(0));
        }
      }
      for (double kr : a.keep_rates) {
        auto cost = EstimateCost(*config, kr);
        if (!cost.ok()) return Fail(cost.status());
        const std::vector<double> rates(batch, kr);
        for (const auto& runner : runners) {
          if (absl::Status s = runner->Prepare(batch, kr); !s.ok()) return Fail(s);
        }
        absl::StatusOr<Timing> timed = time_calls([&](int s) {
          if (graphs) return runners[s]->Run(image_lists[s], rates).status();
          return (*model)->Forward(images[s], kr).status();
        });
        if (!timed.ok()) return Fail(timed.status());
        const Timing& t = *timed;
        const double per_image = t.median / batch;
        const double gflops = 2 * cost->macs / per_image * 1e-9;
        results.push_back({{"keep_rate", kr}, {"batch", batch}, {"dtype", d},
                           {"cuda_graphs", graphs},
                           {"input_size", config->input_size}, {"ms_per_image", per_image * 1e3},
                           {"images_per_s", 1.0 / per_image}, {"gmacs", cost->gmacs()},
                           {"gflops", gflops}, {"gemm_ratio", gflops / gemm_gflops},
                           {"ms_per_image_min", t.min / batch * 1e3},
                           {"ms_per_image_max", t.max / batch * 1e3}});
        absl::StrAppendFormat(&text, "%-6s %-5d %-5g %10.2f %10.1f %8.2f %9.1f %7.0f%% %.2f-%.2f ms\n",
                              d, batch, kr, per_image * 1e3, 1.0 / per_image, cost->gmacs(), gflops,
                              100 * gflops / gemm_gflops, t.min / batch * 1e3, t.max / batch * 1e3);
      }
    }
  }
  nlohmann::json out = {{"model", config->model}, {"input_size", config->input_size},
                        {"device", device.str()}, {"attention", a.attention},
                        {"threads", stream_threads},
                        {"streams", a.streams}, {"blas_threads", BlasThreads()},
                        {"parallel_for_threads", parallel_for_threads},
                        {"gomp_spincount", CurrentProcessSettings().gomp_spincount},
                        {"malloc_keeps_freed_memory",
                         CurrentProcessSettings().malloc_keeps_freed_memory},
                        {"attention_group_bytes", a.attention_group_bytes},
                        {"gemm_gflops", gemm.size() == 1 ? gemm.begin().value() : gemm},
                        {"gemm_gflops_by_dtype", gemm}, {"gemm_gflops_blas", gemm_blas},
                        {"gemm_gflops_onednn", gemm_onednn}, {"linear", a.linear},
                        {"results", results}};
  auto s = WriteOutput("", a.json ? out.dump(1) + "\n" : text);
  return s.ok() ? 0 : Fail(s);
}

}  // namespace

void AddBenchCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "Time a configuration (random weights) in process");
  AddConfigFlags(cmd, &a->config);
  cmd->add_option("--keep-rates", a->keep_rates, "keep rates")->delimiter(',');
  cmd->add_option("--batch", a->batches, "batch sizes")->delimiter(',');
  cmd->add_option("--dtype", a->dtypes, "fp32, bf16, fp16")->delimiter(',');
  cmd->add_option("--threads", a->threads,
                  "intra-op and BLAS threads of each stream (default: the hardware threads "
                  "shared among --streams)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--streams", a->streams,
                  "batches computed side by side, each on its own --threads threads (default "
                  "1), as by a server's batch workers; images/s counts them all")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", a->warmup, "untimed calls first");
  cmd->add_option("--repeats", a->repeats, "timed calls at least");
  cmd->add_option("--min-seconds", a->min_seconds, "time each point at least this long");
  cmd->add_option("--attention-group-bytes", a->attention_group_bytes,
                  "CPU attention in groups of (image, head) pairs whose scores take at most "
                  "this many bytes (0: all pairs at once)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--linear", a->linear,
                  "float32 linear layers on the CPU: onednn (when LibTorch has it) or blas")
      ->check(CLI::IsMember({"onednn", "blas"}))
      ->capture_default_str();
  cmd->add_option("--device", a->device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--attention", a->attention,
                  "attention on CUDA: fused (scaled_dot_product_attention, LibTorch 2.1 and "
                  "later) or matmul")
      ->check(CLI::IsMember({"fused", "matmul"}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json, "print JSON");
  cmd->add_flag("--cuda-graphs", a->cuda_graphs,
                "on a GPU, replay CUDA graphs (one per batch and keep rate, captured before "
                "timing) through a BatchRunner, as clca-server does; logits copied back included");
  cmd->add_flag("--mixed", a->mixed,
                "rows per batch size for batches of mixed keep rates (the images of the calls "
                "take --keep-rates in turn): in one mixed forward pass, in one pass per keep "
                "rate, and beside them batches of one keep rate, the mix's mean and its "
                "highest, with the first two's GFLOP/s against theirs; with one stream the "
                "four are timed call by call in turn");
  cmd->callback([a, exit_code] { *exit_code = Bench(*a); });
}

}  // namespace clca::tool
