// An in-process stand-in for clca-server on loopback, for the client's tests:
// it answers the Classifier and ModelControl calls and health checks from
// canned data, over plaintext or TLS, and records what the calls carried
// (their authorization metadata, keep rates, model control requests). No
// model runs; Classify answers at once unless told to wait.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <gtest/gtest.h>

#include "clca/v1/classifier.grpc.pb.h"

namespace clca::testing {

// The one model the fake serves.
inline constexpr char kFakeModel[] = "fake";
inline constexpr float kFakeDefaultKeepRate = 0.7f;
// The GMACs every answer reports.
inline constexpr double kFakeGmacs = 0.5;
inline constexpr float kFakeMaxKeepRate = 1.0f;

struct FakeServerOptions {
  // TLS with this PEM certificate and key; both empty: plaintext.
  std::string cert_pem;
  std::string key_pem;
  // Mutual TLS: clients must present a certificate that chains to this CA.
  std::string client_ca_pem;
};

// What the fake answers, and what it saw; shared by its services.
class FakeState {
 public:
  // Each Classify answers after this long.
  void set_delay(std::chrono::milliseconds delay) {
    std::lock_guard<std::mutex> lock(mutex_);
    delay_ = delay;
  }
  std::chrono::milliseconds delay() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return delay_;
  }
  // With min_keep_rate and no keep_rate, the fake picks this keep rate
  // (raised to min_keep_rate if below it); the real server picks the highest
  // that meets the deadline.
  void set_adaptive_keep_rate(float keep_rate) {
    std::lock_guard<std::mutex> lock(mutex_);
    adaptive_keep_rate_ = keep_rate;
  }
  float adaptive_keep_rate() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return adaptive_keep_rate_;
  }

  // Records one call's "authorization" value ("" when absent).
  void RecordCall(const grpc::ServerContext& context) {
    std::string value;
    const auto& metadata = context.client_metadata();
    if (auto it = metadata.find("authorization"); it != metadata.end()) {
      value.assign(it->second.data(), it->second.size());
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ++authorizations_[value];
  }
  // Calls seen, by their "authorization" value ("" when absent).
  std::map<std::string, int> authorizations() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return authorizations_;
  }

  void RecordRequest(const v1::ClassifyRequest& request) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++classify_calls_;
    if (request.has_keep_rate()) ++with_keep_rate_;
    if (request.has_min_keep_rate()) min_keep_rates_.push_back(request.min_keep_rate());
  }
  int classify_calls() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return classify_calls_;
  }
  int with_keep_rate() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return with_keep_rate_;
  }
  std::vector<float> min_keep_rates() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return min_keep_rates_;
  }

  // Model control: the state of each version of the fake model.
  std::map<int64_t, v1::ModelInfo> versions;
  std::vector<std::string> control_calls;  // "Load fake 2", "Unload fake", ...
  std::mutex control_mutex;

 private:
  mutable std::mutex mutex_;
  std::chrono::milliseconds delay_{0};
  float adaptive_keep_rate_ = 0.5f;
  std::map<std::string, int> authorizations_;
  int classify_calls_ = 0;
  int with_keep_rate_ = 0;
  std::vector<float> min_keep_rates_;
};

inline v1::ModelInfo FakeModelInfo(int64_t version, v1::ModelState state,
                                   const std::string& reason = "") {
  v1::ModelInfo info;
  info.set_name(kFakeModel);
  info.set_version(version);
  info.set_architecture("fake_vit");
  info.set_method("evit");
  info.set_input_size(8);
  info.set_num_classes(2);
  info.mutable_keep_rate()->set_default_value(kFakeDefaultKeepRate);
  info.mutable_keep_rate()->set_min(0.1f);
  info.mutable_keep_rate()->set_max(kFakeMaxKeepRate);
  info.set_device("cpu");
  info.set_state(state);
  info.set_state_reason(reason);
  return info;
}

class FakeClassifier final : public v1::Classifier::Service {
 public:
  explicit FakeClassifier(FakeState* state) : state_(state) {}

  grpc::Status Classify(grpc::ServerContext* context, const v1::ClassifyRequest* request,
                        v1::ClassifyResponse* response) override {
    state_->RecordCall(*context);
    return Answer(*request, response);
  }

  grpc::Status ClassifyStream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ClassifyStreamResponse, v1::ClassifyStreamRequest>* stream)
      override {
    state_->RecordCall(*context);
    v1::ClassifyStreamRequest item;
    while (stream->Read(&item)) {
      v1::ClassifyStreamResponse out;
      out.set_request_id(item.request_id());
      const grpc::Status status = Answer(item.request(), out.mutable_response());
      out.mutable_status()->set_code(status.error_code());
      out.mutable_status()->set_message(status.error_message());
      if (!stream->Write(out)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest*,
                          v1::ListModelsResponse* response) override {
    state_->RecordCall(*context);
    std::lock_guard<std::mutex> lock(state_->control_mutex);
    for (const auto& [version, info] : state_->versions) *response->add_models() = info;
    return grpc::Status::OK;
  }

  grpc::Status GetModel(grpc::ServerContext* context, const v1::GetModelRequest* request,
                        v1::ModelInfo* response) override {
    state_->RecordCall(*context);
    if (request->model() != kFakeModel) return {grpc::StatusCode::NOT_FOUND, "no such model"};
    std::lock_guard<std::mutex> lock(state_->control_mutex);
    if (state_->versions.empty()) return {grpc::StatusCode::NOT_FOUND, "no version"};
    *response = request->has_version() && state_->versions.count(request->version())
                    ? state_->versions.at(request->version())
                    : state_->versions.rbegin()->second;
    return grpc::Status::OK;
  }

 private:
  grpc::Status Answer(const v1::ClassifyRequest& request, v1::ClassifyResponse* response) {
    state_->RecordRequest(request);
    if (request.model() != kFakeModel) return {grpc::StatusCode::NOT_FOUND, "no such model"};
    std::this_thread::sleep_for(state_->delay());
    float keep_rate = kFakeDefaultKeepRate;
    if (request.has_keep_rate()) {
      keep_rate = request.keep_rate();
    } else if (request.has_min_keep_rate()) {
      keep_rate = std::max(request.min_keep_rate(), state_->adaptive_keep_rate());
    }
    response->set_model(kFakeModel);
    response->set_version(1);
    response->set_keep_rate(keep_rate);
    v1::Prediction* prediction = response->add_predictions();
    prediction->set_class_id(0);
    prediction->set_label("leaf");
    prediction->set_score(1);
    response->mutable_cost()->set_batch_size(1);
    response->mutable_cost()->set_gmacs(kFakeGmacs);
    response->mutable_cost()->set_compute_us(100);
    response->mutable_cost()->set_total_us(150);
    return grpc::Status::OK;
  }

  FakeState* state_;
};

class FakeModelControl final : public v1::ModelControl::Service {
 public:
  explicit FakeModelControl(FakeState* state) : state_(state) {}

  // Load makes a version AVAILABLE, except version 9, which FAILS.
  grpc::Status Load(grpc::ServerContext* context, const v1::ModelControlRequest* request,
                    v1::ModelControlResponse* response) override {
    return Control("Load", *context, *request, response, [](int64_t version) {
      return version == 9 ? FakeModelInfo(9, v1::MODEL_STATE_FAILED, "model.json: no such file")
                          : FakeModelInfo(version, v1::MODEL_STATE_AVAILABLE);
    });
  }
  grpc::Status Unload(grpc::ServerContext* context, const v1::ModelControlRequest* request,
                      v1::ModelControlResponse* response) override {
    return Control("Unload", *context, *request, response, [](int64_t version) {
      return FakeModelInfo(version, v1::MODEL_STATE_UNLOADED, "unloaded by a ModelControl call");
    });
  }
  grpc::Status Reload(grpc::ServerContext* context, const v1::ModelControlRequest* request,
                      v1::ModelControlResponse* response) override {
    return Control("Reload", *context, *request, response, [](int64_t version) {
      return FakeModelInfo(version, v1::MODEL_STATE_AVAILABLE);
    });
  }

 private:
  template <typename NewInfo>
  grpc::Status Control(const std::string& name, const grpc::ServerContext& context,
                       const v1::ModelControlRequest& request, v1::ModelControlResponse* response,
                       NewInfo new_info) {
    state_->RecordCall(context);
    std::lock_guard<std::mutex> lock(state_->control_mutex);
    std::string call = name + " " + request.model();
    if (request.has_version()) call += " " + std::to_string(request.version());
    state_->control_calls.push_back(call);
    if (request.model() != kFakeModel) {
      return {grpc::StatusCode::NOT_FOUND, "model \"" + request.model() + "\" is not in the repository"};
    }
    if (request.has_version()) {
      state_->versions[request.version()] = new_info(request.version());
    } else {
      for (auto& [version, info] : state_->versions) info = new_info(version);
    }
    for (const auto& [version, info] : state_->versions) *response->add_models() = info;
    return grpc::Status::OK;
  }

  FakeState* state_;
};

// The fake server, listening on 127.0.0.1 at a free port until destroyed.
class FakeServer {
 public:
  explicit FakeServer(const FakeServerOptions& options = {})
      : classifier_(&state_), control_(&state_) {
    state_.versions[1] = FakeModelInfo(1, v1::MODEL_STATE_AVAILABLE);
    state_.versions[2] = FakeModelInfo(2, v1::MODEL_STATE_UNLOADED, "left out by the version policy");
    std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
    if (!options.cert_pem.empty()) {
      grpc::SslServerCredentialsOptions ssl(
          options.client_ca_pem.empty()
              ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
              : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      ssl.pem_root_certs = options.client_ca_pem;
      ssl.pem_key_cert_pairs.push_back({options.key_pem, options.cert_pem});
      credentials = grpc::SslServerCredentials(ssl);
    }
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", credentials, &port_);
    builder.RegisterService(&classifier_);
    builder.RegisterService(&control_);
    server_ = builder.BuildAndStart();
  }
  ~FakeServer() {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

  bool running() const { return server_ != nullptr && port_ > 0; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  FakeState& state() { return state_; }

 private:
  FakeState state_;
  FakeClassifier classifier_;
  FakeModelControl control_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// A directory removed when it goes out of scope.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device random;
    path_ = std::filesystem::temp_directory_path() /
            ("clca-client-test-" + std::to_string(random()) + std::to_string(random()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  // Writes `text` to the file `name` here and returns its path.
  std::string Write(const std::string& name, const std::string& text) const {
    const std::filesystem::path path = path_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }
  std::string Path(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// One clca-client run: exit code, stdout and stderr.
struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
  std::string both() const { return out + err; }
};

// Runs clca-client with `args` (shell words), without CLCA_TOKEN unless
// `environment` sets it (e.g. "CLCA_TOKEN=abc").
inline CliRun RunCli(const std::string& args, const std::string& environment = "") {
  static int runs = 0;
  const std::string err_path = std::filesystem::temp_directory_path() /
                               ("clca-client-test-stderr-" + std::to_string(::getpid()) + "-" +
                                std::to_string(runs++));
  const std::string command = "env -u CLCA_TOKEN " + environment + " " + CLCA_BINARY_DIR +
                              "/client/clca-client " + args + " 2>" + err_path;
  CliRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.out.append(buffer, n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_path, std::ios::binary);
  run.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  std::filesystem::remove(err_path);
  return run;
}

}  // namespace clca::testing
