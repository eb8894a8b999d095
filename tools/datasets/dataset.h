// Image classification datasets on disk: a list of (image path, class id)
// plus the class names, read from the layouts of the UFG leaf benchmark and
// from plain class folders. Only lists are read here; images are decoded
// later (clca::DecodeImage / PreprocessFile).
//
// Layouts, for a dataset root R and a split ("train", "test"; "val" for CSV):
//  kCsv          R/train_val.csv, R/test.csv (R/val.csv): a header naming the
//                columns class_id and dir (others are ignored), then one row
//                per image at R/images/<dir>. Cotton80, SoyLocal, SoyGlobal,
//                and what `clca synth` writes.
//  kAnno         R/anno/train.txt, R/anno/test.txt: "<file> <label>" per line,
//                labels from 1, images at R/images/<file>. SoyAgeing (R is
//                one session, e.g. SoyAgeing-R1/R1) and SoyGene.
//  kImageFolder  R/<split>/<class name>/**/<image>: classes sorted by name.
//
// Class names come from R/classes.txt (one per line, line k = class k) when
// present; for CSV also from R/classid_classname.csv (columns class_id and
// class_name). Otherwise there are 1 + the largest class id found in the
// split files present (train and test), named by their label as written.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace clca::data {

enum class DatasetLayout { kCsv, kAnno, kImageFolder };

// "csv", "anno" or "image_folder".
const char* LayoutName(DatasetLayout layout);

struct Example {
  // The image file: the root joined with the listed name.
  std::string path;
  // In [0, class_names.size()).
  int class_id = 0;
};

struct Dataset {
  // The directory the lists were read from.
  std::string root;
  DatasetLayout layout = DatasetLayout::kCsv;
  std::string split;
  // Index = class id.
  std::vector<std::string> class_names;
  // In the order of the split file (sorted paths for image folders).
  std::vector<Example> examples;

  int num_classes() const { return static_cast<int>(class_names.size()); }
};

struct ReadOptions {
  // CSV split files for "train", "test" and "val", relative to the root. The
  // reference trains on train_val.csv when it evaluates on test.csv.
  std::string csv_train = "train_val.csv";
  std::string csv_test = "test.csv";
  std::string csv_val = "val.csv";
  // Folder of the images of the CSV and anno layouts, relative to the root.
  std::string images_dir = "images";
  // The label that means class 0 in anno lists: 1 in the UFG releases.
  int anno_first_label = 1;
  // Check that every listed image is a file (NOT_FOUND otherwise): one stat
  // per image.
  bool check_files = true;
};

// One row of a split list: the file as written, its label, its line (from 1).
struct ListedImage {
  std::string file;
  int label = 0;
  int line = 0;
};

// Rows of a CSV split file. `source` names the file in errors
// ("test.csv:7: ..."). INVALID_ARGUMENT for a missing column, a short row, a
// non-integer class id, an empty dir or no rows at all.
absl::StatusOr<std::vector<ListedImage>> ParseSplitCsv(absl::string_view text,
                                                       absl::string_view source);

// Rows of an anno list ("<file> <label>"; the label is the last field, so
// file names may contain spaces). INVALID_ARGUMENT for a line without a
// label, a non-integer label or no rows at all.
absl::StatusOr<std::vector<ListedImage>> ParseAnnoList(absl::string_view text,
                                                       absl::string_view source);

// Non-empty lines of a classes.txt, surrounding spaces removed.
// INVALID_ARGUMENT for a blank line between names or no names.
absl::StatusOr<std::vector<std::string>> ParseClassNames(absl::string_view text,
                                                         absl::string_view source);

// Readers of one layout. NOT_FOUND for a missing list, folder or image;
// INVALID_ARGUMENT for malformed lists, unknown splits and class ids out of
// range.
absl::StatusOr<Dataset> ReadCsvDataset(const std::string& root, const std::string& split,
                                       const ReadOptions& options = {});
absl::StatusOr<Dataset> ReadAnnoDataset(const std::string& root, const std::string& split,
                                        const ReadOptions& options = {});
// `dir` holds one folder per class (no split level).
absl::StatusOr<Dataset> ReadImageFolder(const std::string& dir, const ReadOptions& options = {});

// The layout of split `split` under `root`, tried in the order CSV, anno,
// image folder. NOT_FOUND, listing what was looked for, when none fits.
absl::StatusOr<DatasetLayout> DetectLayout(const std::string& root, const std::string& split,
                                           const ReadOptions& options = {});

// DetectLayout, then that layout's reader.
absl::StatusOr<Dataset> OpenDataset(const std::string& root, const std::string& split,
                                    const ReadOptions& options = {});

}  // namespace clca::data
