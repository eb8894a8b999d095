// Model versions loaded, swapped and retired while a real server answers a
// steady stream of calls, none of which may fail: new versions moved in,
// corrupt versions, removed versions, ModelControl and clca-client, health
// per model, one worker pool whatever the number of versions, and fair turns
// between models and keep rates.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::HasSubstr;

// Callers classifying without pause until stopped; every answer is recorded.
class SteadyLoad {
 public:
  SteadyLoad(const ServerProcess& server, const std::string& model, int callers,
             std::optional<float> keep_rate = std::nullopt)
      : image_(ReadBytes(TestData("preprocess/leaf_300x300.png"))) {
    for (int i = 0; i < callers; ++i) {
      threads_.emplace_back([this, &server, model, keep_rate] {
        auto client = server.NewClient(std::chrono::milliseconds(120000));
        ClassifyOptions options;
        options.model = model;
        options.keep_rate = keep_rate;
        while (!stop_.load()) {
          auto response = client->Classify(image_, options);
          std::lock_guard<std::mutex> lock(mu_);
          if (response.ok()) {
            ++versions_[response->version()];
          } else {
            failures_.push_back(response.status().ToString());
          }
        }
      });
    }
  }
  ~SteadyLoad() { Stop(); }

  void Stop() {
    stop_ = true;
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  // Answers by version.
  std::map<int64_t, int> versions() {
    std::lock_guard<std::mutex> lock(mu_);
    return versions_;
  }
  int answered(int64_t version) { return versions()[version]; }
  std::vector<std::string> failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }

 private:
  const std::string image_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::map<int64_t, int> versions_;
  std::vector<std::string> failures_;
};

// The state of every version of `model`, as ListModels reports it.
std::map<int64_t, v1::ModelState> States(Client& client, const std::string& model,
                                         std::map<int64_t, std::string>* reasons = nullptr) {
  std::map<int64_t, v1::ModelState> states;
  auto list = client.ListModels();
  if (!list.ok()) return states;
  for (const v1::ModelInfo& info : list->models()) {
    if (info.name() != model) continue;
    states[info.version()] = info.state();
    if (reasons != nullptr) (*reasons)[info.version()] = info.state_reason();
  }
  return states;
}

const std::vector<std::string> kPolling = {"--repository-poll-seconds", "0.2"};

TEST(LifecycleTest, ANewVersionMovedInIsServedWithoutAFailedCall) {
  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), kPolling));
  SteadyLoad load(server, kTestModel, 3);
  ASSERT_TRUE(WaitFor([&] { return load.answered(1) > 5; }));
  repository.MoveVersionIn(kTestModel, 2);
  // Version 2 takes over; version 1 finishes what it accepted and goes.
  EXPECT_TRUE(WaitFor([&] { return load.answered(2) > 5; }, std::chrono::seconds(120)));
  auto client = server.NewClient();
  EXPECT_TRUE(WaitFor([&] {
    return States(*client, kTestModel) ==
           std::map<int64_t, v1::ModelState>{{1, v1::MODEL_STATE_UNLOADED},
                                             {2, v1::MODEL_STATE_AVAILABLE}};
  }));
  load.Stop();
  EXPECT_THAT(load.failures(), ::testing::IsEmpty());
  const std::string metrics = Metrics(server);
  EXPECT_EQ(MetricValue(metrics, "clca_model_loads_total", {{"result", "ok"}}), 2);
  EXPECT_EQ(MetricValue(metrics, "clca_model_unloads_total"), 1);
  EXPECT_EQ(MetricValue(metrics, "clca_model_state", {{"version", "2"}, {"state", "AVAILABLE"}}),
            1);
}

TEST(LifecycleTest, ACorruptNewerVersionFailsWhileThePreviousKeepsServing) {
  TestRepository repository;
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), kPolling));
  SteadyLoad load(server, kTestModel, 2);
  repository.AddCorruptVersion(kTestModel, 2);
  auto client = server.NewClient();
  std::map<int64_t, std::string> reasons;
  EXPECT_TRUE(WaitFor([&] {
    return States(*client, kTestModel, &reasons)[2] == v1::MODEL_STATE_FAILED;
  }));
  EXPECT_THAT(reasons[2], HasSubstr("model.pth"));
  EXPECT_EQ(States(*client, kTestModel)[1], v1::MODEL_STATE_AVAILABLE);
  const int before = load.answered(1);
  EXPECT_TRUE(WaitFor([&] { return load.answered(1) > before + 5; }));
  load.Stop();
  EXPECT_THAT(load.failures(), ::testing::IsEmpty());
  EXPECT_EQ(load.answered(2), 0);
  EXPECT_EQ(MetricValue(Metrics(server), "clca_model_loads_total", {{"result", "failed"}}), 1);
  // Fixed files are tried again.
  repository.RemoveVersion(kTestModel, 2);
  repository.MoveVersionIn(kTestModel, 2);
  EXPECT_TRUE(WaitFor([&] {
    return States(*client, kTestModel)[2] == v1::MODEL_STATE_AVAILABLE;
  }, std::chrono::seconds(120)));
}

TEST(LifecycleTest, RemovingTheServedVersionFallsBackToTheOlderOne) {
  TestRepository repository("", {1, 2});
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), kPolling));
  auto client = server.NewClient();
  EXPECT_EQ(States(*client, kTestModel),
            (std::map<int64_t, v1::ModelState>{{1, v1::MODEL_STATE_UNLOADED},
                                               {2, v1::MODEL_STATE_AVAILABLE}}));
  SteadyLoad load(server, kTestModel, 3);
  ASSERT_TRUE(WaitFor([&] { return load.answered(2) > 5; }));
  repository.RemoveVersion(kTestModel, 2);
  EXPECT_TRUE(WaitFor([&] { return load.answered(1) > 5; }, std::chrono::seconds(120)));
  EXPECT_TRUE(WaitFor([&] {
    return States(*client, kTestModel) ==
           std::map<int64_t, v1::ModelState>{{1, v1::MODEL_STATE_AVAILABLE}};
  }));
  load.Stop();
  EXPECT_THAT(load.failures(), ::testing::IsEmpty());
}

TEST(LifecycleTest, VersionPoliciesChooseWhatServes) {
  TestRepository repository("", {1, 2, 3});
  repository.WriteModelConfig(kTestModel, R"({"version_policy": {"latest": 2}})");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  auto client = server.NewClient();
  EXPECT_EQ(States(*client, kTestModel),
            (std::map<int64_t, v1::ModelState>{{1, v1::MODEL_STATE_UNLOADED},
                                               {2, v1::MODEL_STATE_AVAILABLE},
                                               {3, v1::MODEL_STATE_AVAILABLE}}));
  repository.WriteModelConfig(kTestModel, R"({"version_policy": {"specific": [1]}})");
  auto reloaded = client->ReloadModel(kTestModel);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(States(*client, kTestModel)[1], v1::MODEL_STATE_AVAILABLE);
  EXPECT_TRUE(WaitFor([&] {
    auto states = States(*client, kTestModel);
    return states[2] == v1::MODEL_STATE_UNLOADED && states[3] == v1::MODEL_STATE_UNLOADED;
  }));
  repository.WriteModelConfig(kTestModel, R"({"version_policy": "all"})");
  ASSERT_TRUE(client->ReloadModel(kTestModel).ok());
  EXPECT_EQ(client->GetModel(kTestModel)->versions_size(), 3);
  // A bad config.json changes nothing and says why.
  repository.WriteModelConfig(kTestModel, R"({"version_policy": {"newest": 1}})");
  ASSERT_TRUE(client->ReloadModel(kTestModel).ok());
  EXPECT_EQ(client->GetModel(kTestModel)->versions_size(), 3);
}

TEST(LifecycleTest, ClientUnloadAndLoadUnderLoad) {
  TestRepository repository("", {1, 2});
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path()));
  const std::string at = " --server " + server.address() + " --timeout 120000";
  SteadyLoad load(server, kTestModel, 2);
  // Pinning version 1 beside the policy's version 2.
  ClientRun loaded = RunClient("load --model " + std::string(kTestModel) + " --version 1" + at);
  EXPECT_EQ(loaded.exit_code, 0) << loaded.output;
  EXPECT_THAT(loaded.output, HasSubstr("1 AVAILABLE"));
  // Unloading version 2: the callers, asking for no version, move to 1.
  ClientRun unloaded =
      RunClient("unload --model " + std::string(kTestModel) + " --version 2" + at);
  EXPECT_EQ(unloaded.exit_code, 0) << unloaded.output;
  const int before = load.answered(1);
  EXPECT_TRUE(WaitFor([&] { return load.answered(1) > before + 5; }));
  load.Stop();
  EXPECT_THAT(load.failures(), ::testing::IsEmpty());
  auto client = server.NewClient();
  std::map<int64_t, std::string> reasons;
  EXPECT_TRUE(WaitFor([&] {
    return States(*client, kTestModel, &reasons)[2] == v1::MODEL_STATE_UNLOADED;
  }));
  EXPECT_THAT(reasons[2], HasSubstr("Unload"));
  // Unloading every version leaves the model not serving; loading brings
  // the policy's version back.
  EXPECT_EQ(RunClient("unload --model " + std::string(kTestModel) + at).exit_code, 0);
  EXPECT_EQ(client->CheckHealth(kTestModel).value_or(
                grpc::health::v1::HealthCheckResponse::UNKNOWN),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(client->GetModel(kTestModel).status().code(), absl::StatusCode::kNotFound);
  ClientRun back = RunClient("load --model " + std::string(kTestModel) + at);
  EXPECT_EQ(back.exit_code, 0) << back.output;
  EXPECT_EQ(States(*client, kTestModel)[2], v1::MODEL_STATE_AVAILABLE);
  EXPECT_EQ(*client->CheckHealth(kTestModel), grpc::health::v1::HealthCheckResponse::SERVING);
  // Unknown models and versions are NOT_FOUND.
  EXPECT_EQ(client->LoadModel("no-such-model").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client->LoadModel(kTestModel, 9).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client->UnloadModel(kTestModel, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The poller and the loader wait side by side: a load asked for while the
// server polls must reach the loader every time.
TEST(LifecycleTest, LoadsAndUnloadsWhilePollingEachReturn) {
  TestRepository repository("", {1, 2});
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), {"--repository-poll-seconds", "3600"}));
  auto client = server.NewClient(std::chrono::seconds(60));
  for (int i = 0; i < 10; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(client->LoadModel(kTestModel, 1).ok());
    EXPECT_EQ(States(*client, kTestModel)[1], v1::MODEL_STATE_AVAILABLE);
    ASSERT_TRUE(client->UnloadModel(kTestModel, 1).ok());
  }
}

TEST(LifecycleTest, ASecondVersionAddsNoBatchThread) {
  TestRepository repository;
  repository.AddVersion("othermodel", 1, "");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), {"--workers", "2"}));
  const int threads = server.ThreadsNamed("clca-batch");
  EXPECT_EQ(threads, 2);
  repository.MoveVersionIn(kTestModel, 2);
  auto client = server.NewClient(std::chrono::milliseconds(120000));
  ASSERT_TRUE(client->LoadModel(kTestModel, 1).ok());
  ASSERT_TRUE(client->ReloadModel(kTestModel).ok());
  EXPECT_EQ(States(*client, kTestModel)[2], v1::MODEL_STATE_AVAILABLE);
  EXPECT_EQ(States(*client, kTestModel)[1], v1::MODEL_STATE_AVAILABLE);
  EXPECT_EQ(server.ThreadsNamed("clca-batch"), threads);
}

TEST(LifecycleTest, ModelsAndKeepRatesShareASaturatedWorker) {
  // One worker, and six callers per queue for batches of two: every queue
  // always has a full batch waiting. The delay only lets the last odd
  // request of a stopping caller run.
  TestRepository repository(R"({"max_batch_size": 2, "max_queue_delay_us": 200000})");
  repository.AddVersion("othermodel", 1, R"({"max_batch_size": 2, "max_queue_delay_us": 200000})");
  ServerProcess server;
  ASSERT_TRUE(server.Start(repository.path(), {"--workers", "1"}));
  {
    SteadyLoad a(server, kTestModel, 6, 0.25f);
    SteadyLoad b(server, kTestModel, 6, 1.0f);
    SteadyLoad c(server, "othermodel", 6, 0.5f);
    ASSERT_TRUE(WaitFor([&] {
      return a.answered(1) + b.answered(1) + c.answered(1) >= 300;
    }, std::chrono::seconds(300)));
    a.Stop();
    b.Stop();
    c.Stop();
    const double total = a.answered(1) + b.answered(1) + c.answered(1);
    // Round robin over the two models, then the keep rates of one share its
    // turns (a quarter each when the callers keep pace; bounded loosely, as
    // a caller's pace on a loaded machine is not the server's doing).
    EXPECT_GT(c.answered(1) / total, 0.4) << c.answered(1) << " of " << total;
    EXPECT_GT(a.answered(1) / total, 0.15) << a.answered(1) << " of " << total;
    EXPECT_GT(b.answered(1) / total, 0.15) << b.answered(1) << " of " << total;
    EXPECT_THAT(a.failures(), ::testing::IsEmpty());
  }
}

}  // namespace
}  // namespace clca::testing
