// Hostile input is bounded: a data file that is a symlink to /dev/zero or a FIFO is refused at
// once (it used to grow to gigabytes or block for ever), a line longer than the bound is refused
// with file:line, user-named files read whole are regular and bounded, and a header that names a
// column twice is refused with file:line and the column.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "data/dataset_loader.hpp"
#include "sdk/safe_file.hpp"
#include "recrun/error.hpp"
#include "recrun/text.hpp"
#include "support/plugins.hpp"

namespace recrun {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

void write(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary) << text;
}

TEST(HostileInput, ADataFileLinkedToDevZeroIsRefusedAsNotARegularFile) {
  const fs::path dir = test::temp_dir("hostile-zero");
  fs::create_symlink("/dev/zero", dir / "train_ratings.csv");
  const std::string e = error_of([&] { text::FileBytes bytes(dir / "train_ratings.csv"); });
  EXPECT_NE(e.find((dir / "train_ratings.csv").string()), std::string::npos) << e;
  EXPECT_NE(e.find("not a regular file"), std::string::npos) << e;
  // Through the real data source too.
  const std::string load = error_of([&] {
    data::load_dataset(test::test_registry(), dir, "seed_tsv", data::LoadOptions{.use_cache = false});
  });
  EXPECT_NE(load.find("not a regular file"), std::string::npos) << load;
}

// Opens the FIFO for writing after a minute, or as soon as join() says the reader returned, so
// that a reader that blocks is released (and the test sees how long it waited instead of hanging).
// The minute is far beyond the bound the tests check (10 s), and the bound far beyond what a
// reader that does not block needs even on a loaded machine: no race between the two clocks.
class FifoReleaser {
 public:
  explicit FifoReleaser(fs::path fifo)
      : thread_([this, fifo = std::move(fifo)] {
          {
            std::unique_lock lock(mutex_);
            cv_.wait_for(lock, std::chrono::seconds(60), [this] { return done_; });
          }
          const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
          if (fd >= 0) ::close(fd);
        }) {}
  ~FifoReleaser() { join(); }
  void join() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: it starts once the members it uses exist
};

TEST(HostileInput, AFifoAsADataFileIsRefusedWithoutBlocking) {
  const fs::path dir = test::temp_dir("hostile-fifo");
  const fs::path fifo = dir / "train_ratings.csv";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  FifoReleaser releaser(fifo);
  const auto t0 = Clock::now();
  const std::string e = error_of([&] { text::FileBytes bytes(fifo); });
  const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  releaser.join();
  EXPECT_LT(waited, 10.0) << "opening the FIFO blocked until it was released";
  EXPECT_NE(e.find(fifo.string()), std::string::npos) << e;
  EXPECT_NE(e.find("not a regular file (a FIFO"), std::string::npos) << e;
}

TEST(HostileInput, ALineOverTheBoundIsRefusedWithFileAndLine) {
  const fs::path file = test::temp_dir("hostile-line") / "data.csv";
  write(file, "user,item,time\n" + std::string(200, 'x') + "\nu,i,1\n");
  const text::FileBytes bytes(file);
  text::LineReader lines(bytes.view(), file, /*max_line_bytes=*/100);
  std::string_view line;
  ASSERT_TRUE(lines.next(line));
  const std::string e = error_of([&] { lines.next(line); });
  EXPECT_NE(e.find(file.string() + ":2:"), std::string::npos) << e;
  EXPECT_NE(e.find("longer than"), std::string::npos) << e;
  // A line exactly at the bound is fine.
  const std::string hundred(100, 'y');
  text::LineReader exact(hundred, file, 100);
  EXPECT_TRUE(exact.next(line));
  EXPECT_EQ(line.size(), 100u);
}

TEST(HostileInput, AFileWithoutLineBreaksIsRefusedByTheDataSource) {
  const fs::path dir = test::temp_dir("hostile-noline");
  // 17 MiB of one line: past the default 16 MiB bound.
  write(dir / "train_ratings.csv", "user,item,time\n" + std::string((17u << 20), '7'));
  const std::string e = error_of([&] {
    data::load_dataset(test::test_registry(), dir, "seed_tsv", data::LoadOptions{.use_cache = false});
  });
  EXPECT_NE(e.find("train_ratings.csv:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("longer than 16 MiB"), std::string::npos) << e;
}

TEST(HostileInput, ReadRegularFileRefusesDevicesFifosAndFilesOverTheBound) {
  const fs::path dir = test::temp_dir("hostile-whole");
  fs::create_symlink("/dev/zero", dir / "exp.toml");
  std::string e = error_of([&] { util::read_regular_file(dir / "exp.toml", 1 << 20, "experiment file"); });
  EXPECT_NE(e.find("experiment file '" + (dir / "exp.toml").string() + "' is not a regular file"),
            std::string::npos)
      << e;
  ASSERT_EQ(::mkfifo((dir / "fifo.toml").c_str(), 0600), 0);
  FifoReleaser releaser(dir / "fifo.toml");
  const auto t0 = Clock::now();
  e = error_of([&] { util::read_regular_file(dir / "fifo.toml", 1 << 20, "experiment file"); });
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 10.0)
      << "opening the FIFO blocked until it was released";
  releaser.join();
  EXPECT_NE(e.find("FIFO"), std::string::npos) << e;
  write(dir / "big.toml", std::string(2000, '#'));
  e = error_of([&] { util::read_regular_file(dir / "big.toml", 1000, "experiment file"); });
  EXPECT_NE(e.find("2000 bytes, over the limit of 1000"), std::string::npos) << e;
  e = error_of([&] { util::read_regular_file(dir / "missing.toml", 1000, "experiment file"); });
  EXPECT_NE(e.find("missing.toml"), std::string::npos) << e;
  write(dir / "ok.toml", "a = 1\n");
  EXPECT_EQ(util::read_regular_file(dir / "ok.toml", 1000, "experiment file"), "a = 1\n");
}

std::string load_error(const fs::path& dir, const std::string& source) {
  return error_of([&] {
    data::load_dataset(test::test_registry(), dir, source, data::LoadOptions{.use_cache = false});
  });
}

TEST(HostileInput, SeedTsvRefusesADuplicatedColumnWithFileLineAndName) {
  const fs::path dir = test::temp_dir("hostile-dup-seed");
  write(dir / "train_ratings.csv", "user,item,time,user\n1,2,3,4\n1,3,4,5\n");
  std::string e = load_error(dir, "seed_tsv");
  EXPECT_NE(e.find("train_ratings.csv:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("duplicated column 'user'"), std::string::npos) << e;
  // Two spellings of one role are just as ambiguous.
  write(dir / "train_ratings.csv", "user,item,time,user_id\n1,2,3,4\n1,3,4,5\n");
  e = load_error(dir, "seed_tsv");
  EXPECT_NE(e.find("train_ratings.csv:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("'user' and 4 'user_id'"), std::string::npos) << e;
}

TEST(HostileInput, MovieLensRefusesADuplicatedColumnWithFileLineAndName) {
  const fs::path dir = test::temp_dir("hostile-dup-ml");
  write(dir / "ratings.csv", "userId,movieId,rating,timestamp,movieId\n1,2,4.0,3,2\n");
  write(dir / "movies.csv", "movieId,title,genres\n2,Heat (1995),Action\n");
  std::string e = load_error(dir, "movielens");
  EXPECT_NE(e.find("ratings.csv:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("duplicated column 'movieId'"), std::string::npos) << e;
  write(dir / "ratings.csv", "userId,movieId,rating,timestamp\n1,2,4.0,3\n");
  write(dir / "movies.csv", "movieId,title,genres,Title\n2,Heat (1995),Action,x\n");
  e = load_error(dir, "movielens");
  EXPECT_NE(e.find("movies.csv:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("duplicated column 'Title'"), std::string::npos) << e;
}

TEST(HostileInput, UniqueColumnsAndFindColumnWithALocation) {
  const fs::path file = "h.csv";
  const text::Location at{&file, 1};
  const std::vector<std::string_view> ok = {"user", "item", "", "time", ""};
  EXPECT_NO_THROW(text::check_unique_columns(ok, at));  // empty names are not compared
  const std::vector<std::string_view> dup = {"User ", "item", "user"};
  EXPECT_NE(error_of([&] { text::check_unique_columns(dup, at); }).find("h.csv:1: duplicated column 'user' in the header (columns 1 and 3)"),
            std::string::npos);
  const std::string_view names[] = {"user"};
  const std::vector<std::string_view> one = {"item", "user"};
  EXPECT_EQ(text::find_column(one, names, at), std::optional<std::size_t>(1));
}

}  // namespace
}  // namespace recrun
