// The standard grpc.health.v1.Health service and server reflection answer.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <google/protobuf/descriptor.pb.h>
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "tests/server/server_harness.h"

namespace clca::testing {
namespace {

using ::testing::Contains;

// Protobuf wire format, just enough for the reflection messages: field
// number -> length-delimited payloads.
std::multimap<int, std::string> ParseFields(const std::string& bytes) {
  std::multimap<int, std::string> fields;
  size_t pos = 0;
  auto varint = [&bytes, &pos]() {
    uint64_t value = 0;
    for (int shift = 0; pos < bytes.size(); shift += 7) {
      const auto byte = static_cast<uint8_t>(bytes[pos++]);
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) break;
    }
    return value;
  };
  while (pos < bytes.size()) {
    const uint64_t key = varint();
    const int wire_type = key & 7;
    if (wire_type == 2) {
      const uint64_t length = varint();
      fields.emplace(static_cast<int>(key >> 3), bytes.substr(pos, length));
      pos += length;
    } else if (wire_type == 0) {
      varint();
    } else {
      break;  // Not used by these messages.
    }
  }
  return fields;
}

std::string LengthDelimited(int field, const std::string& payload) {
  std::string out(1, static_cast<char>((field << 3) | 2));
  size_t length = payload.size();
  do {
    char byte = length & 0x7f;
    length >>= 7;
    if (length) byte |= 0x80;
    out.push_back(byte);
  } while (length);
  return out + payload;
}

// One request/response exchange on ServerReflectionInfo (a bidi stream),
// through the generic stub since the reflection protos are not installed.
std::string Reflect(const std::shared_ptr<grpc::Channel>& channel, const std::string& request) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](int id) {
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(tag, reinterpret_cast<void*>(id));
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  if (!step(1)) return "";
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1);
  call->Write(out, reinterpret_cast<void*>(2));
  if (!step(2)) return "";
  grpc::ByteBuffer in;
  call->Read(&in, reinterpret_cast<void*>(3));
  const bool read = step(3);
  call->WritesDone(reinterpret_cast<void*>(4));
  step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!read) return "";
  std::vector<grpc::Slice> slices;
  if (!in.Dump(&slices).ok()) return "";
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(s.begin(), s.end());
  return bytes;
}

class HealthReflectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start(repository_.path()));
    client_ = server_.NewClient();
  }
  TestRepository repository_;
  ServerProcess server_;
  std::unique_ptr<Client> client_;
};

TEST_F(HealthReflectionTest, HealthIsServing) {
  using grpc::health::v1::HealthCheckResponse;
  auto overall = client_->CheckHealth("");
  ASSERT_TRUE(overall.ok()) << overall.status();
  EXPECT_EQ(*overall, HealthCheckResponse::SERVING);
  auto service = client_->CheckHealth("clca.v1.Classifier");
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(*service, HealthCheckResponse::SERVING);
  EXPECT_EQ(client_->CheckHealth("no.such.Service").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(HealthReflectionTest, ReflectionListsServicesAndDescribesTheApi) {
  // ServerReflectionRequest.list_services (field 7).
  std::string response = Reflect(client_->channel(), LengthDelimited(7, ""));
  // ServerReflectionResponse.list_services_response (6) -> service (1) -> name (1).
  std::vector<std::string> services;
  for (const auto& [field, list] : ParseFields(response)) {
    if (field != 6) continue;
    for (const auto& [service_field, service] : ParseFields(list)) {
      for (const auto& [name_field, name] : ParseFields(service)) services.push_back(name);
    }
  }
  EXPECT_THAT(services, Contains("clca.v1.Classifier"));
  EXPECT_THAT(services, Contains("grpc.health.v1.Health"));

  // file_containing_symbol (4) -> file_descriptor_response (4) -> file_descriptor_proto (1).
  response = Reflect(client_->channel(), LengthDelimited(4, "clca.v1.Classifier"));
  bool found = false;
  for (const auto& [field, files] : ParseFields(response)) {
    if (field != 4) continue;
    for (const auto& [file_field, bytes] : ParseFields(files)) {
      google::protobuf::FileDescriptorProto file;
      ASSERT_TRUE(file.ParseFromString(bytes));
      if (file.name() != "clca/v1/classifier.proto") continue;
      found = true;
      std::map<std::string, std::vector<std::string>> methods;
      for (const auto& service : file.service()) {
        for (const auto& method : service.method()) methods[service.name()].push_back(method.name());
      }
      EXPECT_THAT(methods["Classifier"], ::testing::UnorderedElementsAre(
                                             "Classify", "ClassifyStream", "ListModels", "GetModel"));
      EXPECT_THAT(methods["ModelControl"],
                  ::testing::UnorderedElementsAre("Load", "Unload", "Reload"));
    }
  }
  EXPECT_TRUE(found) << "no descriptor for clca/v1/classifier.proto";
}

}  // namespace
}  // namespace clca::testing
