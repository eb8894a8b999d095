// Model control from the client: clca::Client's LoadModel, UnloadModel and
// ReloadModel against an in-process fake server, the rendering of model
// states, and `clca-client load | unload | reload | models`.
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "client/client.h"
#include "client/format.h"
#include "tests/client/fake_server.h"

namespace clca {
namespace {

using ::clca::testing::CliRun;
using ::clca::testing::FakeModelInfo;
using ::clca::testing::FakeServer;
using ::clca::testing::RunCli;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// "name version STATE" per model of the response.
std::vector<std::string> Versions(const v1::ModelControlResponse& response) {
  std::vector<std::string> out;
  for (const v1::ModelInfo& m : response.models()) {
    out.push_back(m.name() + " " + std::to_string(m.version()) + " " + ModelStateName(m.state()));
  }
  return out;
}

TEST(ModelStateTest, NamesWithoutThePrefix) {
  EXPECT_EQ(ModelStateName(v1::MODEL_STATE_UNSPECIFIED), "UNSPECIFIED");
  EXPECT_EQ(ModelStateName(v1::MODEL_STATE_LOADING), "LOADING");
  EXPECT_EQ(ModelStateName(v1::MODEL_STATE_AVAILABLE), "AVAILABLE");
  EXPECT_EQ(ModelStateName(v1::MODEL_STATE_UNLOADING), "UNLOADING");
  EXPECT_EQ(ModelStateName(v1::MODEL_STATE_FAILED), "FAILED");
  EXPECT_EQ(ModelStateName(v1::MODEL_STATE_UNLOADED), "UNLOADED");
  // A state added to the service after this client was built.
  EXPECT_EQ(ModelStateName(static_cast<v1::ModelState>(42)), "42");
}

TEST(ModelStateTest, ControlResponseOneLinePerVersion) {
  v1::ModelControlResponse response;
  *response.add_models() = FakeModelInfo(2, v1::MODEL_STATE_AVAILABLE);
  *response.add_models() = FakeModelInfo(3, v1::MODEL_STATE_FAILED, "model.json: no such file");
  EXPECT_EQ(FormatModelControlResponse(response),
            "fake 2 AVAILABLE\nfake 3 FAILED (model.json: no such file)\n");
  EXPECT_EQ(FormatModelControlResponse({}), "");
}

TEST(ModelStateTest, ModelListShowsEachVersionsState) {
  v1::ListModelsResponse list;
  *list.add_models() = FakeModelInfo(1, v1::MODEL_STATE_AVAILABLE);
  *list.add_models() = FakeModelInfo(2, v1::MODEL_STATE_UNLOADED, "unloaded by a call");
  v1::ModelInfo bare;  // what a server may say of a version it never loaded
  bare.set_name("fake");
  bare.set_version(3);
  bare.set_state(v1::MODEL_STATE_FAILED);
  bare.set_state_reason("bad weights");
  *list.add_models() = bare;
  v1::ModelInfo old = FakeModelInfo(4, v1::MODEL_STATE_UNSPECIFIED);  // from an older server
  *list.add_models() = old;
  const std::string text = FormatModelList(list);
  EXPECT_THAT(text, HasSubstr("fake v1: fake_vit (evit), 2 classes, 8 px, keep rate 0.70 in "
                              "[0.10, 1.00], 0.000 GMACs (full 0.000), cpu, AVAILABLE\n"));
  EXPECT_THAT(text, HasSubstr(", cpu, UNLOADED (unloaded by a call)\n"));
  EXPECT_THAT(text, HasSubstr("\nfake v3: FAILED (bad weights)\n"));
  EXPECT_THAT(text, HasSubstr("\nfake v4: fake_vit (evit), 2 classes"));
  EXPECT_THAT(text, ::testing::EndsWith(", cpu\n"));
}

class ModelControlTest : public ::testing::Test {
 protected:
  std::unique_ptr<Client> MakeClient() {
    ClientOptions options;
    options.timeout = std::chrono::seconds(10);
    options.security.bearer_token = "admin";
    return Client::Create(server_.address(), options);
  }
  std::string Server() const { return " --server " + server_.address() + " --timeout 10000"; }

  FakeServer server_;
};

TEST_F(ModelControlTest, ClientCallsEachMethodWithTheModelAndVersion) {
  std::unique_ptr<Client> client = MakeClient();
  absl::StatusOr<v1::ModelControlResponse> response = client->LoadModel("fake", 2);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(Versions(*response), ElementsAre("fake 1 AVAILABLE", "fake 2 AVAILABLE"));
  response = client->UnloadModel("fake");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(Versions(*response), ElementsAre("fake 1 UNLOADED", "fake 2 UNLOADED"));
  EXPECT_EQ(response->models(0).state_reason(), "unloaded by a ModelControl call");
  response = client->ReloadModel("fake", 1);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(Versions(*response), ElementsAre("fake 1 AVAILABLE", "fake 2 UNLOADED"));
  EXPECT_THAT(server_.state().control_calls,
              ElementsAre("Load fake 2", "Unload fake", "Reload fake 1"));
  EXPECT_THAT(server_.state().authorizations(), ElementsAre(Pair("Bearer admin", 3)));
}

TEST_F(ModelControlTest, ErrorsComeBackAsStatus) {
  const absl::StatusOr<v1::ModelControlResponse> response = MakeClient()->LoadModel("nope");
  EXPECT_EQ(response.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(response.status().message(), "model \"nope\" is not in the repository");
}

TEST_F(ModelControlTest, CliLoadUnloadReload) {
  CliRun run = RunCli("load --model fake --version 2" + Server());
  ASSERT_EQ(run.exit_code, 0) << run.both();
  EXPECT_EQ(run.out, "fake 1 AVAILABLE\nfake 2 AVAILABLE\n");
  run = RunCli("unload --model fake --version 1" + Server());
  ASSERT_EQ(run.exit_code, 0) << run.both();
  EXPECT_EQ(run.out, "fake 1 UNLOADED (unloaded by a ModelControl call)\nfake 2 AVAILABLE\n");
  run = RunCli("reload --model fake" + Server());
  ASSERT_EQ(run.exit_code, 0) << run.both();
  EXPECT_EQ(run.out, "fake 1 AVAILABLE\nfake 2 AVAILABLE\n");
  EXPECT_THAT(server_.state().control_calls,
              ElementsAre("Load fake 2", "Unload fake 1", "Reload fake"));
}

TEST_F(ModelControlTest, CliJsonIsTheResponse) {
  const CliRun run = RunCli("unload --model fake --json" + Server(), "CLCA_TOKEN=admin");
  ASSERT_EQ(run.exit_code, 0) << run.both();
  const nlohmann::json json = nlohmann::json::parse(run.out);
  ASSERT_EQ(json["models"].size(), 2u);
  EXPECT_EQ(json["models"][1]["name"], "fake");
  EXPECT_EQ(json["models"][1]["version"], "2");  // int64 is a string in proto JSON
  EXPECT_EQ(json["models"][1]["state"], "MODEL_STATE_UNLOADED");
  EXPECT_EQ(json["models"][1]["state_reason"], "unloaded by a ModelControl call");
  EXPECT_THAT(server_.state().authorizations(), ElementsAre(Pair("Bearer admin", 1)));
}

TEST_F(ModelControlTest, CliExitCodes) {
  // The call returned, but the version failed to load: printed, exit code 2.
  CliRun run = RunCli("load --model fake --version 9" + Server());
  EXPECT_EQ(run.exit_code, 2) << run.both();
  EXPECT_THAT(run.out, HasSubstr("fake 9 FAILED (model.json: no such file)\n"));
  // Another version's failure does not fail a load of version 1.
  run = RunCli("load --model fake --version 1" + Server());
  EXPECT_EQ(run.exit_code, 0) << run.both();
  // The call failed: the status on stderr, exit code 1.
  run = RunCli("reload --model nope" + Server());
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(run.err, "error: NOT_FOUND: model \"nope\" is not in the repository\n");
  // No server.
  run = RunCli("unload --model fake --server 127.0.0.1:1 --timeout 2000");
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, HasSubstr("error: UNAVAILABLE"));
  // --model is required.
  run = RunCli("load" + Server());
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.both(), HasSubstr("--model is required"));
  EXPECT_EQ(server_.state().control_calls.size(), 3u);  // load, load, reload
}

TEST_F(ModelControlTest, CliModelsShowsStates) {
  const CliRun run = RunCli("models" + Server());
  ASSERT_EQ(run.exit_code, 0) << run.both();
  EXPECT_THAT(run.out, HasSubstr("fake v1: fake_vit (evit)"));
  EXPECT_THAT(run.out, HasSubstr(", cpu, AVAILABLE\n"));
  EXPECT_THAT(run.out, HasSubstr(", cpu, UNLOADED (left out by the version policy)\n"));
}

}  // namespace
}  // namespace clca
