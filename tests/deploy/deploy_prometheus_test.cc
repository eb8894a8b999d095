// Prometheus (Debian's package) scraping a real clca-server with the shipped
// configuration and alert rules; promtool accepting them; every query of the
// Grafana dashboard answering over the server's metrics.
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "client/client.h"
#include "tests/deploy/deploy_harness.h"

namespace clca::deploy_test {
namespace {

constexpr const char* kPrometheus = "/usr/bin/prometheus";
constexpr const char* kPromtool = "/usr/bin/promtool";

fs::path PrometheusDir() { return SourceDir() / "deploy" / "prometheus"; }
fs::path DashboardFile() {
  return SourceDir() / "deploy" / "grafana" / "dashboards" / "clca-serve.json";
}

// The names of `pattern`'s first group over `text`.
std::set<std::string> Matches(const std::string& text, const std::string& pattern) {
  std::set<std::string> names;
  const std::regex re(pattern);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it) {
    names.insert((*it)[1]);
  }
  return names;
}

TEST(PromtoolTest, AcceptsTheShippedConfigRulesAndRuleTests) {
  ASSERT_TRUE(IsExecutable(kPromtool));
  const std::vector<std::vector<std::string>> checks = {
      {kPromtool, "check", "config", (PrometheusDir() / "prometheus.yml").string()},
      {kPromtool, "check", "rules", (PrometheusDir() / "alerts.yml").string()},
      // When each alert fires and when it does not.
      {kPromtool, "test", "rules", (PrometheusDir() / "alerts_test.yml").string()}};
  for (const auto& check : checks) {
    const CommandResult result = RunCommand(check);
    EXPECT_EQ(result.exit_code, 0) << check[1] << " " << check[2] << ":\n" << result.output;
  }
}

// A Prometheus server on loopback with its data in `dir`.
class Prometheus {
 public:
  ::testing::AssertionResult Start(const fs::path& dir, const std::string& config) {
    if (auto ok = IsExecutable(kPrometheus); !ok) return ok;
    fs::create_directories(dir);
    WriteFile(dir / "prometheus.yml", config);
    // rule_files are relative to the configuration file.
    fs::copy_file(PrometheusDir() / "alerts.yml", dir / "alerts.yml");
    log_ = dir / "prometheus.log";
    // Another process may take the free port before Prometheus binds it.
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = FreePort();
      auto started = process_.Start(
          {kPrometheus, "--config.file=" + (dir / "prometheus.yml").string(),
           "--storage.tsdb.path=" + (dir / "data").string(),
           "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"},
          log_);
      if (!started) return started;
      if (WaitFor([&] { return HttpGet(port_, "/-/ready").has_value() || !process_.Running(); },
                  seconds(30)) &&
          process_.Running()) {
        return ::testing::AssertionSuccess();
      }
      process_.Stop(SIGKILL, seconds(0));
    }
    return ::testing::AssertionFailure() << "prometheus did not start:\n" << process_.Log();
  }

  // The "data" object of an instant query's answer, or null.
  nlohmann::json Query(const std::string& promql) const {
    const std::optional<std::string> body =
        HttpGet(port_, "/api/v1/query?query=" + UrlEncode(promql));
    if (!body) return nullptr;
    const nlohmann::json answer = nlohmann::json::parse(*body, nullptr, false);
    if (answer.is_discarded() || answer.value("status", "") != "success") return nullptr;
    return answer["data"];
  }

  // The value of a query answering one sample, or nullopt.
  std::optional<double> Scalar(const std::string& promql) const {
    const nlohmann::json data = Query(promql);
    if (data.is_null() || data["result"].size() != 1) return std::nullopt;
    return std::stod(data["result"][0]["value"][1].get<std::string>());
  }

  std::optional<std::string> Get(const std::string& target) const { return HttpGet(port_, target); }
  std::string Log() const { return process_.Log(); }

 private:
  ChildProcess process_;
  fs::path log_;
  int port_ = 0;
};

// A clca-server that has answered three requests and refused one, and a
// Prometheus scraping it every second with deploy/prometheus/prometheus.yml.
class PrometheusScrapeTest : public ::testing::Test {
 protected:
  static constexpr int kAnswered = 3;
  static constexpr int kRefused = 1;

  void SetUp() override {
    ASSERT_TRUE(server_.Start(repository_.path(), dir_.path() / "server.log"));
    ClientOptions options;
    options.timeout = std::chrono::milliseconds(30000);
    auto client = Client::Create(server_.address(), options);
    ClassifyOptions request;
    request.model = "leafnet";
    for (const char* image : {"leaf_300x300.png", "leaf_600x400.jpg", "leaf_small_120x90.jpg"}) {
      const auto response =
          client->ClassifyFile(TestData(std::string("preprocess/") + image), request);
      ASSERT_TRUE(response.ok()) << response.status();
    }
    request.keep_rate = 3.0f;
    EXPECT_EQ(
        client->ClassifyFile(TestData("preprocess/leaf_300x300.png"), request).status().code(),
        absl::StatusCode::kInvalidArgument);
    ASSERT_EQ(MetricSum(server_.Metrics(), "clca_requests_total"), kAnswered + kRefused)
        << server_.Metrics();

    std::string config = ReadFile(PrometheusDir() / "prometheus.yml");
    config = ReplaceExpecting(config, "(scrape_interval|evaluation_interval): \\S+", "$1: 1s", 2,
                              "prometheus.yml intervals");
    config = ReplaceExpecting(config, "\"clca-server:8080\"",
                              "\"127.0.0.1:" + std::to_string(server_.metrics_port()) + "\"", 1,
                              "prometheus.yml target");
    // The replicas' job resolves a name only Docker's DNS knows; it is last.
    const size_t replicas = config.find("  - job_name: clca-replicas");
    ASSERT_NE(replicas, std::string::npos) << config;
    config.resize(replicas);
    ASSERT_TRUE(prometheus_.Start(dir_.path() / "prometheus", config));
  }

  // Polls `promql` until it answers `expected`.
  ::testing::AssertionResult Eventually(const std::string& promql, double expected) const {
    std::optional<double> value;
    if (WaitFor([&] { return (value = prometheus_.Scalar(promql)) == expected; }, seconds(30))) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << promql << " = " << (value ? std::to_string(*value) : "no single sample")
           << ", expected " << expected << "\nprometheus log:\n"
           << prometheus_.Log();
  }

  TempDir dir_;
  TestRepository repository_;
  Server server_;
  Prometheus prometheus_;
};

TEST_F(PrometheusScrapeTest, CountsTheRequestsTheServerAnswered) {
  EXPECT_TRUE(Eventually("up{job=\"clca\"}", 1));
  EXPECT_TRUE(Eventually("sum(clca_requests_total)", kAnswered + kRefused));
  EXPECT_TRUE(Eventually("sum(clca_requests_total{code=\"OK\"})", kAnswered));
  EXPECT_TRUE(Eventually("sum(clca_requests_total{code=\"INVALID_ARGUMENT\"})", kRefused));
}

TEST_F(PrometheusScrapeTest, EvaluatesEveryAlertRuleWithoutAlertingOnAHealthyServer) {
  const std::set<std::string> shipped =
      Matches(ReadFile(PrometheusDir() / "alerts.yml"), "- alert: (\\w+)");
  ASSERT_GE(shipped.size(), 4u);
  // Loaded, and evaluated without error ("unknown" until the first round).
  std::set<std::string> evaluated;
  nlohmann::json answer;
  WaitFor(
      [&] {
        answer =
            nlohmann::json::parse(prometheus_.Get("/api/v1/rules").value_or(""), nullptr, false);
        evaluated.clear();
        if (answer.is_discarded()) return false;
        for (const auto& group : answer["data"]["groups"]) {
          for (const auto& rule : group["rules"]) {
            if (rule["type"] == "alerting" && rule["health"] == "ok") {
              evaluated.insert(rule["name"].get<std::string>());
            }
          }
        }
        return evaluated == shipped;
      },
      seconds(15));
  EXPECT_EQ(evaluated, shipped) << answer.dump() << "\n" << prometheus_.Log();
  // The rules watching the targets match the job, which is up. Evaluated
  // before the first scrape, ClcaNoScrape may go pending: at each of the two
  // evaluations after one, neither rule is pending or firing.
  ASSERT_TRUE(Eventually("up{job=\"clca\"}", 1));
  const std::set<std::string> watching = {"ClcaNoScrape", "ClcaTargetDown"};
  // Rule -> its evaluation times seen so far, and the states at the later ones.
  std::map<std::string, std::set<std::string>> before, after;
  std::map<std::string, std::set<std::string>> states;
  const auto read_rules = [&](std::map<std::string, std::set<std::string>>* evaluations) {
    answer = nlohmann::json::parse(prometheus_.Get("/api/v1/rules").value_or(""), nullptr, false);
    if (answer.is_discarded()) return;
    for (const auto& group : answer["data"]["groups"]) {
      for (const auto& rule : group["rules"]) {
        const std::string name = rule.value("name", "");
        if (watching.count(name) == 0) continue;
        const std::string at = rule.value("lastEvaluation", "");
        if (evaluations == &after && before[name].count(at) == 0 &&
            after[name].insert(at).second) {
          states[name].insert(rule.value("state", ""));
        } else if (evaluations == &before) {
          before[name].insert(at);
        }
      }
    }
  };
  read_rules(&before);
  EXPECT_TRUE(WaitFor(
      [&] {
        read_rules(&after);
        for (const std::string& name : watching) {
          if (after[name].size() < 2) return false;
        }
        return true;
      },
      seconds(120)))
      << answer.dump();
  for (const std::string& name : watching) {
    EXPECT_EQ(states[name], std::set<std::string>{"inactive"}) << name << ": " << answer.dump();
  }
}

TEST_F(PrometheusScrapeTest, AnswersEveryDashboardQueryAndAlertMetric) {
  const nlohmann::json dashboard = nlohmann::json::parse(ReadFile(DashboardFile()), nullptr, false);
  ASSERT_FALSE(dashboard.is_discarded()) << DashboardFile() << " is not JSON";
  std::vector<std::string> queries;
  for (const auto& panel : dashboard["panels"]) {
    for (const auto& target : panel.value("targets", nlohmann::json::array())) {
      queries.push_back(target["expr"].get<std::string>());
    }
  }
  ASSERT_GE(queries.size(), 8u);

  // Every metric the dashboard and the alerts name is one the server exports.
  const std::string metrics = server_.Metrics();
  std::set<std::string> names = Matches(ReadFile(DashboardFile()), "(clca_[a-z_]+)");
  const std::set<std::string> alert_names =
      Matches(ReadFile(PrometheusDir() / "alerts.yml"), "(clca_[a-z_]+)");
  names.insert(alert_names.begin(), alert_names.end());
  for (const std::string& name : names) {
    EXPECT_TRUE(metrics.find(name + "{") != std::string::npos ||
                metrics.find(name + " ") != std::string::npos)
        << name << " is not among the server's metrics";
  }

  // Grafana's variables, as Grafana would fill them in.
  for (std::string query : queries) {
    query = std::regex_replace(query, std::regex("\\$__rate_interval"), "1m");
    query = std::regex_replace(query, std::regex("\\$__range"), "5m");
    query = std::regex_replace(query, std::regex("\\$model"), ".+");
    nlohmann::json data;
    // Rates need two scrapes.
    WaitFor(
        [&] {
          data = prometheus_.Query(query);
          return data.is_object() && !data["result"].empty();
        },
        seconds(15));
    ASSERT_TRUE(data.is_object()) << query << " was refused\n" << prometheus_.Log();
    EXPECT_FALSE(data["result"].empty()) << query << " has no data";
  }
}

}  // namespace
}  // namespace clca::deploy_test
