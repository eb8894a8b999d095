// Readers of the CSV and anno layouts, layout detection.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tools/datasets/dataset.h"
#include "tools/datasets/lines.h"

namespace clca::data {
namespace {

namespace fs = std::filesystem;

constexpr char kClassesTxt[] = "classes.txt";
constexpr char kClassIdClassName[] = "classid_classname.csv";

bool IsFile(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool IsDirectory(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

absl::StatusOr<std::string> ReadTextFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in || IsDirectory(path)) return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::InternalError(absl::StrCat("error reading ", path.string()));
  return text.str();
}

absl::Status CheckSplit(const std::string& split) {
  if (split == "train" || split == "test" || split == "val") return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown split '", split, "': expected train, test or val"));
}

std::string CsvFileFor(const std::string& split, const ReadOptions& options) {
  if (split == "train") return options.csv_train;
  if (split == "test") return options.csv_test;
  return options.csv_val;
}

using ListParser = absl::StatusOr<std::vector<ListedImage>> (*)(absl::string_view, absl::string_view);

absl::StatusOr<std::vector<ListedImage>> ReadList(const fs::path& path, ListParser parse) {
  auto text = ReadTextFile(path);
  if (!text.ok()) return text.status();
  return parse(*text, path.string());
}

// classid_classname.csv: columns class_id and class_name; unnamed ids in
// between are named by their number.
absl::StatusOr<std::vector<std::string>> ReadClassIdNames(const fs::path& path) {
  auto text = ReadTextFile(path);
  if (!text.ok()) return text.status();
  const std::string source = path.string();
  const std::vector<Line> lines = SplitLines(*text);
  if (lines.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": empty file"));
  auto header = SplitCsvLine(lines[0].text);
  if (!header.ok()) return absl::InvalidArgumentError(absl::StrCat(source, ":1: ", header.status().message()));
  auto id_col = ColumnIndex(*header, "class_id", source);
  if (!id_col.ok()) return id_col.status();
  auto name_col = ColumnIndex(*header, "class_name", source);
  if (!name_col.ok()) return name_col.status();
  std::vector<std::string> names;
  std::vector<bool> named;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].text.empty()) continue;
    const std::string where = absl::StrCat(source, ":", lines[i].number, ": ");
    auto fields = SplitCsvLine(lines[i].text);
    if (!fields.ok()) return absl::InvalidArgumentError(where + std::string(fields.status().message()));
    int id = 0;
    if (fields->size() <= static_cast<size_t>(std::max(*id_col, *name_col))) {
      return absl::InvalidArgumentError(where + "too few fields");
    }
    if (!absl::SimpleAtoi((*fields)[*id_col], &id) || id < 0 || id > 10000000) {
      return absl::InvalidArgumentError(absl::StrCat(where, "bad class_id '", (*fields)[*id_col], "'"));
    }
    if (static_cast<size_t>(id) >= names.size()) {
      names.resize(id + 1);
      named.resize(id + 1, false);
    }
    if (named[id]) return absl::InvalidArgumentError(absl::StrCat(where, "class_id ", id, " named twice"));
    names[id] = (*fields)[*name_col];
    named[id] = true;
  }
  if (names.empty()) return absl::InvalidArgumentError(absl::StrCat(source, ": no class names"));
  for (size_t id = 0; id < names.size(); ++id) {
    if (!named[id]) names[id] = absl::StrCat(id);
  }
  return names;
}

// The class names of a dataset: classes.txt, else (CSV only)
// classid_classname.csv, else one per label up to the largest label in
// `rows` and in the other split lists that exist.
absl::StatusOr<std::vector<std::string>> ResolveClassNames(
    const fs::path& root, bool csv, int first_label, const std::vector<ListedImage>& rows,
    const std::vector<fs::path>& other_lists, ListParser parse) {
  if (IsFile(root / kClassesTxt)) {
    auto text = ReadTextFile(root / kClassesTxt);
    if (!text.ok()) return text.status();
    return ParseClassNames(*text, (root / kClassesTxt).string());
  }
  if (csv && IsFile(root / kClassIdClassName)) return ReadClassIdNames(root / kClassIdClassName);
  int largest = first_label;
  for (const ListedImage& row : rows) largest = std::max(largest, row.label);
  for (const fs::path& other : other_lists) {
    if (!IsFile(other)) continue;
    auto more = ReadList(other, parse);
    if (!more.ok()) return more.status();
    for (const ListedImage& row : *more) largest = std::max(largest, row.label);
  }
  if (largest - first_label >= 10000000) {
    return absl::InvalidArgumentError(absl::StrCat("label ", largest, " is implausibly large"));
  }
  std::vector<std::string> names;
  for (int label = first_label; label <= largest; ++label) names.push_back(absl::StrCat(label));
  return names;
}

// Turns listed rows into examples: class ids checked against the names,
// files (optionally) checked on disk.
absl::StatusOr<std::vector<Example>> ToExamples(const std::vector<ListedImage>& rows,
                                                const std::string& source, int first_label,
                                                const fs::path& images, int num_classes,
                                                const ReadOptions& options) {
  std::vector<Example> examples;
  examples.reserve(rows.size());
  for (const ListedImage& row : rows) {
    const std::string where = absl::StrCat(source, ":", row.line, ": ");
    const int64_t id = static_cast<int64_t>(row.label) - first_label;
    if (id < 0 || id >= num_classes) {
      std::string hint;
      if (id < 0 && first_label > 0) {
        hint = absl::StrCat(" (labels start at ", first_label, "; set anno_first_label for other bases)");
      }
      return absl::InvalidArgumentError(absl::StrCat(where, "class ", row.label, " out of range: ",
                                                     num_classes, " classes", hint));
    }
    Example example;
    example.path = (images / row.file).string();
    example.class_id = static_cast<int>(id);
    if (options.check_files && !IsFile(example.path)) {
      return absl::NotFoundError(absl::StrCat(where, "image ", example.path, " not found"));
    }
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace

const char* LayoutName(DatasetLayout layout) {
  switch (layout) {
    case DatasetLayout::kCsv: return "csv";
    case DatasetLayout::kAnno: return "anno";
    case DatasetLayout::kImageFolder: return "image_folder";
  }
  return "unknown";
}

absl::StatusOr<Dataset> ReadCsvDataset(const std::string& root, const std::string& split,
                                       const ReadOptions& options) {
  if (absl::Status s = CheckSplit(split); !s.ok()) return s;
  const fs::path dir(root);
  const fs::path list = dir / CsvFileFor(split, options);
  auto rows = ReadList(list, &ParseSplitCsv);
  if (!rows.ok()) return rows.status();
  auto names = ResolveClassNames(dir, /*csv=*/true, 0, *rows,
                                 {dir / options.csv_train, dir / options.csv_test}, &ParseSplitCsv);
  if (!names.ok()) return names.status();
  auto examples = ToExamples(*rows, list.string(), 0, dir / options.images_dir,
                             static_cast<int>(names->size()), options);
  if (!examples.ok()) return examples.status();
  return Dataset{root, DatasetLayout::kCsv, split, *std::move(names), *std::move(examples)};
}

absl::StatusOr<Dataset> ReadAnnoDataset(const std::string& root, const std::string& split,
                                        const ReadOptions& options) {
  if (absl::Status s = CheckSplit(split); !s.ok()) return s;
  const fs::path dir(root);
  const fs::path list = dir / "anno" / (split + ".txt");
  auto rows = ReadList(list, &ParseAnnoList);
  if (!rows.ok()) return rows.status();
  auto names = ResolveClassNames(dir, /*csv=*/false, options.anno_first_label, *rows,
                                 {dir / "anno" / "train.txt", dir / "anno" / "test.txt"},
                                 &ParseAnnoList);
  if (!names.ok()) return names.status();
  auto examples = ToExamples(*rows, list.string(), options.anno_first_label,
                             dir / options.images_dir, static_cast<int>(names->size()), options);
  if (!examples.ok()) return examples.status();
  return Dataset{root, DatasetLayout::kAnno, split, *std::move(names), *std::move(examples)};
}

absl::StatusOr<DatasetLayout> DetectLayout(const std::string& root, const std::string& split,
                                           const ReadOptions& options) {
  if (absl::Status s = CheckSplit(split); !s.ok()) return s;
  const fs::path dir(root);
  if (!IsDirectory(dir)) return absl::NotFoundError(absl::StrCat("dataset root ", root, " is not a directory"));
  const fs::path csv = dir / CsvFileFor(split, options);
  const fs::path anno = dir / "anno" / (split + ".txt");
  const fs::path folder = dir / split;
  if (IsFile(csv)) return DatasetLayout::kCsv;
  if (IsFile(anno)) return DatasetLayout::kAnno;
  if (IsDirectory(folder)) return DatasetLayout::kImageFolder;
  return absl::NotFoundError(absl::StrCat("no '", split, "' split under ", root, ": looked for ",
                                          csv.string(), ", ", anno.string(), " and ",
                                          folder.string(), "/"));
}

absl::StatusOr<Dataset> OpenDataset(const std::string& root, const std::string& split,
                                    const ReadOptions& options) {
  auto layout = DetectLayout(root, split, options);
  if (!layout.ok()) return layout.status();
  switch (*layout) {
    case DatasetLayout::kCsv: return ReadCsvDataset(root, split, options);
    case DatasetLayout::kAnno: return ReadAnnoDataset(root, split, options);
    case DatasetLayout::kImageFolder: {
      auto dataset = ReadImageFolder((fs::path(root) / split).string(), options);
      if (dataset.ok()) dataset->split = split;
      return dataset;
    }
  }
  return absl::InternalError("unknown layout");
}

}  // namespace clca::data
