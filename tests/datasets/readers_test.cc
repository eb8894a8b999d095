// Dataset list readers: the CSV, anno and class-folder layouts, layout
// detection, and clear errors for bad inputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/datasets/test_dirs.h"
#include "tools/datasets/dataset.h"
#include "tools/synth/dataset_writer.h"

namespace clca::data {
namespace {

namespace fs = std::filesystem;
using clca::testing::ScratchDir;
using clca::testing::WriteText;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A file whose contents the readers never look at.
void Touch(const fs::path& path) { WriteText(path, "not decoded"); }

std::vector<int> ClassIds(const Dataset& d) {
  std::vector<int> ids;
  for (const Example& e : d.examples) ids.push_back(e.class_id);
  return ids;
}

TEST(ParseSplitCsvTest, ReadsColumnsByName) {
  auto rows = ParseSplitCsv("\xEF\xBB\xBF" "dir,extra,class_id\r\na.png,x,3\r\n\r\n\"b,c.png\",y, 0\n",
                            "t.csv");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].file, "a.png");
  EXPECT_EQ((*rows)[0].label, 3);
  EXPECT_EQ((*rows)[0].line, 2);
  EXPECT_EQ((*rows)[1].file, "b,c.png");
  EXPECT_EQ((*rows)[1].label, 0);
  EXPECT_EQ((*rows)[1].line, 4);
}

TEST(ParseSplitCsvTest, ErrorsNameFileAndLine) {
  auto missing = ParseSplitCsv("class_id,path\n0,a.png\n", "t.csv");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("t.csv:1: the header has no column 'dir'"));
  auto bad_id = ParseSplitCsv("class_id,dir\n0,a.png\nseven,b.png\n", "t.csv");
  EXPECT_THAT(bad_id.status().message(), HasSubstr("t.csv:3: class_id 'seven' is not an integer"));
  auto short_row = ParseSplitCsv("class_id,dir\n0\n", "t.csv");
  EXPECT_THAT(short_row.status().message(), HasSubstr("t.csv:2: expected at least 2 fields"));
  auto quote = ParseSplitCsv("class_id,dir\n0,\"a.png\n", "t.csv");
  EXPECT_THAT(quote.status().message(), HasSubstr("t.csv:2: unterminated quote"));
  EXPECT_THAT(ParseSplitCsv("class_id,dir\n", "t.csv").status().message(), HasSubstr("no rows"));
  EXPECT_THAT(ParseSplitCsv("", "t.csv").status().message(), HasSubstr("empty file"));
  EXPECT_THAT(ParseSplitCsv("class_id,dir\n1,\n", "t.csv").status().message(),
              HasSubstr("t.csv:2: empty dir"));
}

TEST(ParseAnnoListTest, LastFieldIsTheLabel) {
  auto rows = ParseAnnoList("R1/a.jpg 1\n\nwith space.jpg\t12\r\n", "train.txt");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].file, "R1/a.jpg");
  EXPECT_EQ((*rows)[0].label, 1);
  EXPECT_EQ((*rows)[1].file, "with space.jpg");
  EXPECT_EQ((*rows)[1].label, 12);
  EXPECT_EQ((*rows)[1].line, 3);
  EXPECT_THAT(ParseAnnoList("a.jpg 1\nb.jpg\n", "train.txt").status().message(),
              HasSubstr("train.txt:2: expected '<file> <label>'"));
  EXPECT_THAT(ParseAnnoList("a.jpg x1\n", "train.txt").status().message(),
              HasSubstr("train.txt:1: label 'x1' is not an integer"));
  EXPECT_EQ(ParseAnnoList("\n\n", "train.txt").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ParseClassNamesTest, OneNamePerLine) {
  auto names = ParseClassNames("a\n b \nc\n\n", "classes.txt");
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, ElementsAre("a", "b", "c"));
  EXPECT_THAT(ParseClassNames("a\n\nb\n", "classes.txt").status().message(),
              HasSubstr("classes.txt:2: blank line"));
}

TEST(CsvLayoutTest, ReadsWhatTheGeneratorWrites) {
  ScratchDir dir;
  synth::SynthDatasetOptions options;
  options.out_dir = dir.str();
  options.num_classes = 3;
  options.train_per_class = 2;
  options.test_per_class = 1;
  options.render.size = 48;
  ASSERT_TRUE(synth::WriteSynthDataset(options).ok());

  auto train = OpenDataset(dir.str(), "train");
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->layout, DatasetLayout::kCsv);
  EXPECT_EQ(train->split, "train");
  EXPECT_THAT(train->class_names, ElementsAre("cultivar_000", "cultivar_001", "cultivar_002"));
  EXPECT_THAT(ClassIds(*train), ElementsAre(0, 0, 1, 1, 2, 2));
  EXPECT_EQ(train->examples[2].path, (dir.path() / "images" / "1_0_train.png").string());
  auto test = OpenDataset(dir.str(), "test");
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_THAT(ClassIds(*test), ElementsAre(0, 1, 2));
  EXPECT_EQ(test->num_classes(), 3);
  EXPECT_EQ(OpenDataset(dir.str(), "val").status().code(), absl::StatusCode::kNotFound);
}

TEST(CsvLayoutTest, ClassCountFromBothSplitsWithoutNames) {
  ScratchDir dir;
  WriteText(dir.path() / "train_val.csv", "class_id,dir\n0,a.png\n1,b.png\n");
  WriteText(dir.path() / "test.csv", "class_id,dir\n4,c.png\n");
  for (const char* f : {"a.png", "b.png", "c.png"}) Touch(dir.path() / "images" / f);
  auto train = ReadCsvDataset(dir.str(), "train");
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_THAT(train->class_names, ElementsAre("0", "1", "2", "3", "4"));
}

TEST(CsvLayoutTest, ClassNamesFromClassIdClassNameCsv) {
  ScratchDir dir;
  WriteText(dir.path() / "train_val.csv", "class_id,dir\n1,a.png\n");
  WriteText(dir.path() / "classid_classname.csv", "class_id,class_name\n0,Alpha\n1,Beta\n");
  Touch(dir.path() / "images" / "a.png");
  auto train = ReadCsvDataset(dir.str(), "train");
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_THAT(train->class_names, ElementsAre("Alpha", "Beta"));
  EXPECT_THAT(ClassIds(*train), ElementsAre(1));
}

TEST(CsvLayoutTest, BadInputs) {
  ScratchDir dir;
  Touch(dir.path() / "images" / "a.png");
  WriteText(dir.path() / "classes.txt", "x\ny\n");
  WriteText(dir.path() / "train_val.csv", "class_id,dir\n0,a.png\n2,a.png\n");
  auto out_of_range = ReadCsvDataset(dir.str(), "train");
  EXPECT_EQ(out_of_range.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out_of_range.status().message(), HasSubstr("train_val.csv:3: class 2 out of range: 2 classes"));
  WriteText(dir.path() / "train_val.csv", "class_id,dir\n0,a.png\n-1,a.png\n");
  EXPECT_THAT(ReadCsvDataset(dir.str(), "train").status().message(), HasSubstr("class -1 out of range"));

  WriteText(dir.path() / "train_val.csv", "class_id,dir\n0,a.png\n1,missing.png\n");
  auto missing = ReadCsvDataset(dir.str(), "train");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("train_val.csv:3: image "));
  EXPECT_THAT(missing.status().message(), HasSubstr("missing.png not found"));
  ReadOptions no_check;
  no_check.check_files = false;
  EXPECT_TRUE(ReadCsvDataset(dir.str(), "train", no_check).ok());

  EXPECT_EQ(ReadCsvDataset(dir.str(), "test").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadCsvDataset(dir.str(), "dev").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AnnoLayoutTest, LabelsStartAtOne) {
  ScratchDir dir;
  WriteText(dir.path() / "anno" / "train.txt", "s/1.jpg 1\ns/2.jpg 3\n");
  WriteText(dir.path() / "anno" / "test.txt", "s/3.jpg 2\n");
  for (const char* f : {"s/1.jpg", "s/2.jpg", "s/3.jpg"}) Touch(dir.path() / "images" / f);
  auto train = OpenDataset(dir.str(), "train");
  ASSERT_TRUE(train.ok()) << train.status();
  EXPECT_EQ(train->layout, DatasetLayout::kAnno);
  EXPECT_THAT(ClassIds(*train), ElementsAre(0, 2));
  EXPECT_THAT(train->class_names, ElementsAre("1", "2", "3"));
  EXPECT_EQ(train->examples[1].path, (dir.path() / "images" / "s/2.jpg").string());
  auto test = OpenDataset(dir.str(), "test");
  ASSERT_TRUE(test.ok()) << test.status();
  EXPECT_EQ(test->num_classes(), 3);
}

TEST(AnnoLayoutTest, BadInputs) {
  ScratchDir dir;
  Touch(dir.path() / "images" / "a.jpg");
  WriteText(dir.path() / "anno" / "train.txt", "a.jpg 1\na.jpg 0\n");
  auto zero = ReadAnnoDataset(dir.str(), "train");
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(zero.status().message(), HasSubstr("train.txt:2: class 0 out of range"));
  EXPECT_THAT(zero.status().message(), HasSubstr("anno_first_label"));
  ReadOptions zero_based;
  zero_based.anno_first_label = 0;
  auto ok = ReadAnnoDataset(dir.str(), "train", zero_based);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT(ClassIds(*ok), ElementsAre(1, 0));

  WriteText(dir.path() / "classes.txt", "only\n");
  WriteText(dir.path() / "anno" / "train.txt", "a.jpg 1\na.jpg 2\n");
  EXPECT_THAT(ReadAnnoDataset(dir.str(), "train").status().message(),
              HasSubstr("train.txt:2: class 2 out of range: 1 classes"));
  WriteText(dir.path() / "anno" / "train.txt", "a.jpg 1\nbroken\n");
  EXPECT_THAT(ReadAnnoDataset(dir.str(), "train").status().message(), HasSubstr("train.txt:2:"));
}

TEST(ImageFolderTest, ClassesSortedByName) {
  ScratchDir dir;
  const fs::path train = dir.path() / "train";
  Touch(train / "beta" / "2.png");
  Touch(train / "beta" / "1.JPG");
  Touch(train / "alpha" / "nested" / "x.jpeg");
  Touch(train / "alpha" / "notes.txt");
  Touch(train / "alpha" / ".hidden.png");
  Touch(train / ".cache" / "y.png");
  auto d = OpenDataset(dir.str(), "train");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->layout, DatasetLayout::kImageFolder);
  EXPECT_EQ(d->split, "train");
  EXPECT_THAT(d->class_names, ElementsAre("alpha", "beta"));
  ASSERT_EQ(d->examples.size(), 3u);
  EXPECT_EQ(d->examples[0].path, (train / "alpha" / "nested" / "x.jpeg").string());
  EXPECT_EQ(d->examples[1].path, (train / "beta" / "1.JPG").string());
  EXPECT_THAT(ClassIds(*d), ElementsAre(0, 1, 1));
}

TEST(ImageFolderTest, BadInputs) {
  ScratchDir dir;
  fs::create_directories(dir.path() / "empty_root");
  EXPECT_THAT(ReadImageFolder((dir.path() / "empty_root").string()).status().message(),
              HasSubstr("no class folders"));
  Touch(dir.path() / "classes" / "a" / "1.png");
  fs::create_directories(dir.path() / "classes" / "b");
  EXPECT_THAT(ReadImageFolder((dir.path() / "classes").string()).status().message(),
              HasSubstr("has no images"));
  EXPECT_EQ(ReadImageFolder((dir.path() / "nowhere").string()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(DetectLayoutTest, PrefersCsvThenAnnoThenFolders) {
  ScratchDir dir;
  EXPECT_EQ(DetectLayout((dir.path() / "missing").string(), "train").status().code(),
            absl::StatusCode::kNotFound);
  auto none = DetectLayout(dir.str(), "train");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr("train_val.csv"));
  EXPECT_THAT(none.status().message(), HasSubstr("anno/train.txt"));
  EXPECT_EQ(DetectLayout(dir.str(), "holdout").status().code(), absl::StatusCode::kInvalidArgument);

  fs::create_directories(dir.path() / "train" / "a");
  EXPECT_EQ(*DetectLayout(dir.str(), "train"), DatasetLayout::kImageFolder);
  WriteText(dir.path() / "anno" / "train.txt", "a.png 1\n");
  EXPECT_EQ(*DetectLayout(dir.str(), "train"), DatasetLayout::kAnno);
  WriteText(dir.path() / "train_val.csv", "class_id,dir\n0,a.png\n");
  EXPECT_EQ(*DetectLayout(dir.str(), "train"), DatasetLayout::kCsv);
  EXPECT_STREQ(LayoutName(DatasetLayout::kImageFolder), "image_folder");
}

}  // namespace
}  // namespace clca::data
