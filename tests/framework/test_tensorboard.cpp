// Tests for the TensorBoard event-file writer and reader (framework/src/tensorboard). The writer
// and reader use libprotobuf; the files are also decoded here by a small wire reader of the
// test's own (and checked against hand-encoded bytes), so that a mistake in recrun's .proto
// files cannot pass unnoticed by being made the same way on both sides.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/plugins.hpp"
#include "tensorboard/crc32c.hpp"
#include "tensorboard/event_reader.hpp"
#include "tensorboard/event_writer.hpp"
#include "tensorboard/hparams.hpp"
#include "support/process.hpp"

namespace fs = std::filesystem;
using namespace recrun::tensorboard;

using recrun::test::read_file;

namespace {

std::string bytes_of(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// Expects `fn` to throw std::runtime_error whose message contains every fragment.
template <typename Fn>
void expect_error_containing(Fn fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    ADD_FAILURE() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    for (const std::string& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message '" << message << "' lacks '" << fragment << "'";
    }
  }
}

class TensorboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("recrun_tb_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
};

}  // namespace

// ---------------------------------------------------------------------------------- CRC32C

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
}

TEST(Crc32c, ExtendingMatchesOneShotAtEverySplitAndAlignment) {
  // Exercises the 8-byte block path, the byte tail and unaligned starts.
  std::string data;
  for (int i = 0; i < 100; ++i) data.push_back(static_cast<char>((i * 37 + 11) & 0xFF));
  const std::uint32_t whole = crc32c(data);
  for (std::size_t split = 0; split <= data.size(); ++split) {
    const std::uint32_t first = crc32c(data.data(), split);
    EXPECT_EQ(crc32c_extend(first, data.data() + split, data.size() - split), whole) << split;
  }
  // Same bytes at a different address give the same CRC.
  std::string shifted = "x" + data;
  EXPECT_EQ(crc32c(shifted.data() + 1, data.size()), whole);
}

TEST(Crc32c, Masking) {
  EXPECT_EQ(mask_crc(0xE3069283u), 0xC78AB0E5u);  // computed independently of this code
  EXPECT_EQ(masked_crc32c("123456789"), 0xC78AB0E5u);
  EXPECT_EQ(mask_crc(0u), crc_mask_delta);
  for (std::uint32_t crc : {0u, 1u, 0x12345678u, 0xFFFFFFFFu, 0x80000000u, 0xE3069283u}) {
    EXPECT_EQ(unmask_crc(mask_crc(crc)), crc);
    EXPECT_NE(mask_crc(crc), crc);
  }
}

// ------------------------------------------------------------------- independent decoding

namespace {

// A protobuf wire-format walker written from the encoding rules alone (it shares nothing with
// libprotobuf or recrun's .proto files): tag = field number << 3 | wire type; varints are 7
// bits a byte, least significant first; fixed32/fixed64 are little-endian; wire type 2 is a
// varint length and that many bytes.
struct WireField {
  std::uint32_t number = 0;
  int type = -1;             // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
  std::uint64_t scalar = 0;  // varint, fixed32 or fixed64 payload
  std::string bytes;         // length-delimited payload

  double as_double() const { return std::bit_cast<double>(scalar); }
  float as_float() const { return std::bit_cast<float>(static_cast<std::uint32_t>(scalar)); }
};

std::uint64_t take_varint(std::string_view s, std::size_t& pos) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= s.size()) throw std::runtime_error("varint runs past the end");
    const auto byte = static_cast<unsigned char>(s[pos++]);
    v |= static_cast<std::uint64_t>(byte & 0x7Fu) << shift;
    if ((byte & 0x80u) == 0) return v;
  }
  throw std::runtime_error("varint longer than 10 bytes");
}

std::uint64_t take_le(std::string_view s, std::size_t& pos, std::size_t width) {
  if (s.size() - pos < width) throw std::runtime_error("fixed-width field cut short");
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[pos + i])) << (8 * i);
  }
  pos += width;
  return v;
}

// Every field of one message, in the order they are stored.
std::vector<WireField> wire_fields(std::string_view s) {
  std::vector<WireField> fields;
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::uint64_t key = take_varint(s, pos);
    WireField f{.number = static_cast<std::uint32_t>(key >> 3),
                .type = static_cast<int>(key & 7),
                .scalar = 0,
                .bytes = {}};
    switch (f.type) {
      case 0: f.scalar = take_varint(s, pos); break;
      case 1: f.scalar = take_le(s, pos, 8); break;
      case 5: f.scalar = take_le(s, pos, 4); break;
      case 2: {
        const std::uint64_t n = take_varint(s, pos);
        if (n > s.size() - pos) throw std::runtime_error("length runs past the end");
        f.bytes = std::string(s.substr(pos, n));
        pos += n;
        break;
      }
      default: throw std::runtime_error("unexpected wire type " + std::to_string(f.type));
    }
    fields.push_back(std::move(f));
  }
  return fields;
}

// The field numbers of a message, in stored order.
std::vector<std::uint32_t> numbers(const std::vector<WireField>& fields) {
  std::vector<std::uint32_t> out;
  for (const WireField& f : fields) out.push_back(f.number);
  return out;
}

// The one field with this number, which must have this wire type.
const WireField& field(const std::vector<WireField>& fields, std::uint32_t number, int type) {
  const WireField* found = nullptr;
  for (const WireField& f : fields) {
    if (f.number != number) continue;
    if (found != nullptr) throw std::runtime_error("field " + std::to_string(number) + " twice");
    found = &f;
  }
  if (found == nullptr) throw std::runtime_error("no field " + std::to_string(number));
  if (found->type != type) throw std::runtime_error("field " + std::to_string(number) + " type");
  return *found;
}

// CRC32C one bit at a time, straight from the definition (reflected polynomial 0x82F63B78),
// masked as TFRecord stores it.
std::uint32_t bitwise_masked_crc32c(std::string_view bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const char c : bytes) {
    crc ^= static_cast<unsigned char>(c);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? 0x82F63B78u : 0u);
  }
  crc = ~crc;
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

// The payloads of a TFRecord file, each record's two CRCs checked on the way.
std::vector<std::string> independent_records(const fs::path& path) {
  const std::string file = read_file(path);
  std::vector<std::string> records;
  std::size_t pos = 0;
  while (pos < file.size()) {
    const std::string_view header = std::string_view(file).substr(pos, 8);
    const std::uint64_t length = take_le(file, pos, 8);
    if (take_le(file, pos, 4) != bitwise_masked_crc32c(header)) {
      throw std::runtime_error("length CRC");
    }
    if (file.size() - pos < length + 4) throw std::runtime_error("record cut short");
    records.push_back(file.substr(pos, length));
    pos += length;
    if (take_le(file, pos, 4) != bitwise_masked_crc32c(records.back())) {
      throw std::runtime_error("data CRC");
    }
  }
  return records;
}

// The one Summary.Value of a summary Event, checking the Event's own fields on the way.
std::vector<WireField> summary_value(const std::string& event, double wall_time,
                                     std::int64_t step) {
  const auto fields = wire_fields(event);
  // Canonical order, defaults (step 0) left out, exactly as TensorFlow's writer does.
  EXPECT_EQ(numbers(fields), step == 0 ? std::vector<std::uint32_t>({1, 5})
                                       : std::vector<std::uint32_t>({1, 2, 5}));
  EXPECT_EQ(field(fields, 1, 1).as_double(), wall_time);  // Event.wall_time
  if (step != 0) {
    EXPECT_EQ(field(fields, 2, 0).scalar, static_cast<std::uint64_t>(step));  // Event.step
  }
  const auto summary = wire_fields(field(fields, 5, 2).bytes);  // Event.summary
  EXPECT_EQ(numbers(summary), std::vector<std::uint32_t>({1}));
  return wire_fields(field(summary, 1, 2).bytes);  // Summary.value
}

// SummaryMetadata.plugin_data of a value: {plugin_name, content}.
std::vector<WireField> plugin_data(const std::vector<WireField>& value) {
  const auto metadata = wire_fields(field(value, 9, 2).bytes);  // Value.metadata
  return wire_fields(field(metadata, 1, 2).bytes);              // SummaryMetadata.plugin_data
}

}  // namespace

TEST_F(TensorboardTest, WrittenFileDecodesWithAnIndependentWireReader) {
  fs::path path;
  {
    EventWriter writer(dir_, {.start_time = 1000.0});
    writer.add_scalar("train/loss", 0.75, 3, 1001.0);
    writer.add_scalar("train/loss", 0.5, 4, 1002.0);
    writer.add_text("notes", "hello", 5, 1003.0);
    write_session_start(writer, {{"lr", 0.001}, {"model", std::string("sasrec")}, {"bias", true}},
                        "g1", 1004.0);
    write_session_end(writer, SessionStatus::success, 1005.0);
    path = writer.path();
  }
  const std::vector<std::string> records = independent_records(path);
  ASSERT_EQ(records.size(), 6u);

  // Event{wall_time, file_version}.
  const auto first = wire_fields(records[0]);
  EXPECT_EQ(numbers(first), std::vector<std::uint32_t>({1, 3}));
  EXPECT_EQ(field(first, 1, 1).as_double(), 1000.0);
  EXPECT_EQ(field(first, 3, 2).bytes, "brain.Event:2");

  // Scalars: Value{tag 1, simple_value 2 (float), metadata 9} on first use, then no metadata.
  const auto scalar = summary_value(records[1], 1001.0, 3);
  EXPECT_EQ(numbers(scalar), std::vector<std::uint32_t>({1, 2, 9}));
  EXPECT_EQ(field(scalar, 1, 2).bytes, "train/loss");
  EXPECT_EQ(field(scalar, 2, 5).as_float(), 0.75f);
  const auto scalar_plugin = plugin_data(scalar);
  EXPECT_EQ(numbers(scalar_plugin), std::vector<std::uint32_t>({1}));
  EXPECT_EQ(field(scalar_plugin, 1, 2).bytes, "scalars");
  const auto second = summary_value(records[2], 1002.0, 4);
  EXPECT_EQ(numbers(second), std::vector<std::uint32_t>({1, 2}));
  EXPECT_EQ(field(second, 2, 5).as_float(), 0.5f);

  // Text: Value{tag, tensor 8 {dtype 7 (DT_STRING), empty shape, string_val 8}, metadata
  // {plugin "text", data_class 2 (tensor)}}.
  const auto text = summary_value(records[3], 1003.0, 5);
  EXPECT_EQ(numbers(text), std::vector<std::uint32_t>({1, 8, 9}));
  const auto tensor = wire_fields(field(text, 8, 2).bytes);
  EXPECT_EQ(numbers(tensor), std::vector<std::uint32_t>({1, 2, 8}));
  EXPECT_EQ(field(tensor, 1, 0).scalar, 7u);
  EXPECT_EQ(field(tensor, 2, 2).bytes, "");
  EXPECT_EQ(field(tensor, 8, 2).bytes, "hello");
  const auto text_metadata = wire_fields(field(text, 9, 2).bytes);
  EXPECT_EQ(numbers(text_metadata), std::vector<std::uint32_t>({1, 4}));
  EXPECT_EQ(field(text_metadata, 4, 0).scalar, 2u);
  EXPECT_EQ(field(plugin_data(text), 1, 2).bytes, "text");

  // HParams session start: Value{tag, tensor {dtype 1, shape {one empty dim}}, metadata
  // {plugin "hparams", content HParamsPluginData{session_start_info 3 {...}}}}.
  const auto start = summary_value(records[4], 1004.0, 0);
  EXPECT_EQ(field(start, 1, 2).bytes, "_hparams_/session_start_info");
  const auto null_tensor = wire_fields(field(start, 8, 2).bytes);
  EXPECT_EQ(field(null_tensor, 1, 0).scalar, 1u);
  const auto shape = wire_fields(field(null_tensor, 2, 2).bytes);
  EXPECT_EQ(field(shape, 2, 2).bytes, "");  // TensorShapeProto.dim: one Dim, size 0
  const auto start_plugin = plugin_data(start);
  EXPECT_EQ(field(start_plugin, 1, 2).bytes, "hparams");
  const auto start_data = wire_fields(field(start_plugin, 2, 2).bytes);
  EXPECT_EQ(numbers(start_data), std::vector<std::uint32_t>({3}));  // version 0 left out
  const auto start_info = wire_fields(field(start_data, 3, 2).bytes);
  // hparams map entries (1) in key order, then group_name (4) and start_time_secs (5).
  EXPECT_EQ(numbers(start_info), std::vector<std::uint32_t>({1, 1, 1, 4, 5}));
  std::vector<std::string> keys;
  std::vector<std::vector<WireField>> values;
  for (std::size_t i = 0; i < 3; ++i) {
    const auto entry = wire_fields(start_info[i].bytes);
    keys.push_back(field(entry, 1, 2).bytes);
    values.push_back(wire_fields(field(entry, 2, 2).bytes));  // google.protobuf.Value
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"bias", "lr", "model"}));
  EXPECT_EQ(field(values[0], 4, 0).scalar, 1u);              // bool_value
  EXPECT_EQ(field(values[1], 2, 1).as_double(), 0.001);      // number_value
  EXPECT_EQ(field(values[2], 3, 2).bytes, "sasrec");         // string_value
  EXPECT_EQ(field(start_info, 4, 2).bytes, "g1");
  EXPECT_EQ(field(start_info, 5, 1).as_double(), 1004.0);

  // HParams session end: HParamsPluginData{session_end_info 4 {status 1, end_time_secs 2}}.
  const auto end = summary_value(records[5], 1005.0, 0);
  const auto end_data = wire_fields(field(plugin_data(end), 2, 2).bytes);
  const auto end_info = wire_fields(field(end_data, 4, 2).bytes);
  EXPECT_EQ(field(end_info, 1, 0).scalar, 1u);  // STATUS_SUCCESS
  EXPECT_EQ(field(end_info, 2, 1).as_double(), 1005.0);
}

TEST_F(TensorboardTest, ScalarRecordMatchesHandEncodedBytes) {
  // Event{wall_time: 1001.0, step: 1, summary{value{tag: "a", simple_value: 0.75,
  //       metadata{plugin_data{plugin_name: "scalars"}}}}}
  const std::string expected = bytes_of({
      0x09, 0,    0,    0,    0,    0,    0x48, 0x8f, 0x40,  // wall_time (1, fixed64)
      0x10, 0x01,                                            // step (2, varint)
      0x2a, 0x17,                                            // summary (5), 23 bytes
      0x0a, 0x15,                                            //   value (1), 21 bytes
      0x0a, 0x01, 'a',                                       //     tag (1)
      0x15, 0,    0,    0x40, 0x3f,                          //     simple_value (2, fixed32)
      0x4a, 0x0b,                                            //     metadata (9), 11 bytes
      0x0a, 0x09,                                            //       plugin_data (1)
      0x0a, 0x07, 's',  'c',  'a',  'l',  'a',  'r',  's',   //         plugin_name (1)
  });
  fs::path path;
  {
    EventWriter writer(dir_, {.start_time = 1700000000.5});
    writer.add_scalar("a", 0.75, 1, 1001.0);
    path = writer.path();
  }
  const std::vector<std::string> records = independent_records(path);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1], expected);
}

TEST(Reader, MalformedBytesAreAProtoError) {
  // Summary claims 5 bytes, 1 follows.
  EXPECT_THROW((void)decode_event(bytes_of({0x2a, 0x05, 0x0a})), ProtoError);
  // A varint whose continuation bit promises a byte that is not there.
  EXPECT_THROW((void)decode_event(bytes_of({0x10, 0x96})), ProtoError);
  EXPECT_THROW((void)decode_hparams_plugin_data(bytes_of({0x12, 0x05, 'a'})), ProtoError);
  EXPECT_THROW((void)encode_summary_event(1.0, 1, bytes_of({0x0a, 0x09, 'x'})), ProtoError);
}

TEST_F(TensorboardTest, RecordThatIsNotAnEventIsReportedWithItsOffset) {
  fs::path path;
  {
    EventWriter writer(dir_, {.start_time = 100.0});
    path = writer.path();
  }
  const auto offset = fs::file_size(path);
  {
    // Intact framing (both CRCs right) around bytes that are no Event.
    std::ofstream out(path, std::ios::binary | std::ios::app);
    const std::string record = frame_record(bytes_of({0x2a, 0x05, 0x0a}));
    out.write(record.data(), static_cast<std::streamsize>(record.size()));
  }
  expect_error_containing([&] { (void)read_event_file(path); },
                          {path.filename().string(), "byte offset " + std::to_string(offset),
                           "not a valid Event"});
}

// ------------------------------------------------------------------------- framing, files

// Record for Event{wall_time: 1700000000.5, file_version: "brain.Event:2"}, with CRCs computed
// by a separate bit-at-a-time CRC32C, not by the code under test.
const std::string expected_first_record = bytes_of({
    0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,        // length 24, uint64 LE
    0xa3, 0x7f, 0x4b, 0x22,                                // masked CRC32C of the length
    0x09, 0x00, 0x00, 0x20, 0x40, 0xfc, 0x54, 0xd9, 0x41,  // wall_time (1, fixed64)
    0x1a, 0x0d, 'b',  'r',  'a',  'i',  'n',  '.',  'E',
    'v',  'e',  'n',  't',  ':',  '2',  // file_version
    0x2b, 0x35, 0x31, 0x10,             // masked CRC32C of the data
});

TEST(Framing, FileVersionRecordMatchesHandComputedBytes) {
  EXPECT_EQ(frame_record(encode_file_version_event(1700000000.5)), expected_first_record);
}

TEST_F(TensorboardTest, FirstRecordOfAFileIsByteExact) {
  fs::path path;
  {
    EventWriter writer(dir_ / "a" / "b", {.start_time = 1700000000.5});
    path = writer.path();
  }
  EXPECT_EQ(path.parent_path(), dir_ / "a" / "b");
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  const std::string prefix = "events.out.tfevents.1700000000." + std::string(host) + "." +
                             std::to_string(::getpid()) + ".";
  const std::string name = path.filename().string();
  ASSERT_EQ(name.rfind(prefix, 0), 0u) << name;
  const std::string counter = name.substr(prefix.size());
  EXPECT_FALSE(counter.empty()) << name;
  EXPECT_EQ(counter.find_first_not_of("0123456789"), std::string::npos) << name;
  EXPECT_EQ(read_file(path), expected_first_record);
}

TEST_F(TensorboardTest, WritersInOneDirectoryNeverShareAFile) {
  EventWriter first(dir_, {.start_time = 1700000000.0});
  EventWriter second(dir_, {.start_time = 1700000000.0});
  EXPECT_NE(first.path(), second.path());
  EXPECT_TRUE(fs::exists(first.path()));
  EXPECT_TRUE(fs::exists(second.path()));
}

TEST_F(TensorboardTest, UnusableDirectoryIsAnErrorNamingThePath) {
  fs::create_directories(dir_);
  write_file(dir_ / "plain_file", "x");
  expect_error_containing([&] { EventWriter writer(dir_ / "plain_file" / "run"); },
                          {"plain_file", "cannot create"});
}

// --------------------------------------------------------------------------------- scalars

TEST_F(TensorboardTest, ScalarsRoundTrip) {
  fs::path path;
  {
    EventWriter writer(dir_, {.start_time = 1000.0});
    writer.add_scalar("train/loss", 0.75, 1, 1001.0);
    writer.add_scalar("train/loss", 0.5, 2, 1002.0);
    writer.add_scalar("valid/NDCG@10", 0.125, 2, 1002.5);
    writer.add_scalar("train/lr", 1e-3, -3, 1003.0);
    writer.add_scalar("train/loss", 0.1, 0);  // default wall time: now
    path = writer.path();
    // No flush: the destructor must do it.
  }
  const std::vector<Event> events = read_event_file(path);
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_EQ(events[0].wall_time, 1000.0);
  EXPECT_FALSE(events[0].has_summary);

  struct Expected {
    std::string tag;
    float value;
    std::int64_t step;
    double wall_time;
    bool metadata;
  };
  const std::vector<Expected> expected = {
      {"train/loss", 0.75f, 1, 1001.0, true},
      {"train/loss", 0.5f, 2, 1002.0, false},
      {"valid/NDCG@10", 0.125f, 2, 1002.5, true},
      {"train/lr", 1e-3f, -3, 1003.0, true},
  };
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const Event& e = events[i + 1];
    SCOPED_TRACE(expected[i].tag);
    EXPECT_TRUE(e.file_version.empty());
    EXPECT_EQ(e.step, expected[i].step);
    EXPECT_EQ(e.wall_time, expected[i].wall_time);
    ASSERT_EQ(e.values.size(), 1u);
    const SummaryValue& v = e.values[0];
    EXPECT_EQ(v.tag, expected[i].tag);
    ASSERT_TRUE(v.simple_value);
    EXPECT_EQ(*v.simple_value, expected[i].value);
    EXPECT_EQ(v.scalar(), static_cast<double>(expected[i].value));
    EXPECT_FALSE(v.tensor);
    EXPECT_EQ(v.has_metadata, expected[i].metadata);
    EXPECT_EQ(v.plugin_name, expected[i].metadata ? "scalars" : "");
  }
  const Event& last = events[5];
  EXPECT_EQ(last.step, 0);
  EXPECT_GT(last.wall_time, 1.6e9);  // a real clock, not zero
  EXPECT_EQ(last.values.at(0).simple_value, 0.1f);
}

TEST_F(TensorboardTest, FlushMakesRecordsVisibleWhileTheWriterLives) {
  EventWriter writer(dir_);
  writer.add_scalar("train/throughput", 1234.5, 7);
  writer.flush(/*sync_to_disk=*/true);
  const std::vector<Event> events = read_event_file(writer.path());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].values.at(0).tag, "train/throughput");
  EXPECT_EQ(events[1].step, 7);
}

TEST_F(TensorboardTest, ConcurrentWritersProduceWholeRecords) {
  fs::path path;
  {
    EventWriter writer(dir_);
    path = writer.path();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&writer, t] {
        for (int i = 0; i < 200; ++i) writer.add_scalar("thread/" + std::to_string(t), i, i);
      });
    }
    for (auto& thread : threads) thread.join();
  }
  const std::vector<Event> events = read_event_file(path);
  ASSERT_EQ(events.size(), 1u + 4u * 200u);
  std::map<std::string, int> per_tag;
  for (std::size_t i = 1; i < events.size(); ++i) ++per_tag[events[i].values.at(0).tag];
  for (int t = 0; t < 4; ++t) EXPECT_EQ(per_tag["thread/" + std::to_string(t)], 200);
}

TEST_F(TensorboardTest, TextRoundTrip) {
  fs::path path;
  {
    EventWriter writer(dir_);
    writer.add_text("config", "# run\n`lr = 0.001`", 3, 50.0);
    writer.add_text("config", "second", 4, 51.0);
    path = writer.path();
  }
  const std::vector<Event> events = read_event_file(path);
  ASSERT_EQ(events.size(), 3u);
  const SummaryValue& first = events[1].values.at(0);
  EXPECT_EQ(first.tag, "config");
  EXPECT_EQ(first.plugin_name, "text");
  EXPECT_EQ(first.data_class, 2);  // DATA_CLASS_TENSOR
  ASSERT_TRUE(first.tensor);
  EXPECT_EQ(first.tensor->dtype, 7);  // DT_STRING
  EXPECT_TRUE(first.tensor->shape.empty());
  EXPECT_EQ(first.tensor->string_val, std::vector<std::string>{"# run\n`lr = 0.001`"});
  EXPECT_FALSE(first.simple_value);
  EXPECT_FALSE(first.scalar());
  const SummaryValue& second = events[2].values.at(0);
  EXPECT_FALSE(second.has_metadata);
  EXPECT_EQ(second.tensor->string_val, std::vector<std::string>{"second"});
}

TEST(Reader, ScalarFromNewStyleTensor) {
  // Value{tag: "x", tensor{dtype: DT_FLOAT, tensor_shape{}, float_val: [2.5]}}, the form TF2's
  // tf.summary.scalar writes, with float_val packed (as writers do) and unpacked (as parsers
  // must also accept).
  const std::string packed = bytes_of({0x0a, 0x01, 'x', 0x42, 0x0a, 0x08, 0x01, 0x12, 0x00, 0x2a,
                                       0x04, 0x00, 0x00, 0x20, 0x40});
  const std::string unpacked = bytes_of({0x0a, 0x01, 'x', 0x42, 0x09, 0x08, 0x01, 0x12, 0x00,
                                         0x2d, 0x00, 0x00, 0x20, 0x40});
  for (const std::string& value : {packed, unpacked}) {
    const Event e = decode_event(encode_summary_event(0.0, 5, value));
    EXPECT_EQ(e.step, 5);
    ASSERT_EQ(e.values.size(), 1u);
    EXPECT_FALSE(e.values[0].simple_value);
    ASSERT_TRUE(e.values[0].tensor);
    EXPECT_TRUE(e.values[0].tensor->shape.empty());
    EXPECT_EQ(e.values[0].scalar(), 2.5);
  }
}

// --------------------------------------------------------------------------------- hparams

TEST(HParams, SessionStartContentMatchesHandEncodedBytes) {
  // HParamsPluginData{session_start_info{hparams{"lr": number_value 0.5}, group_name: "g"}}
  const std::string expected = bytes_of({
      0x1a, 0x14,                                 // field 3 (session_start_info), 20 bytes
      0x0a, 0x0f,                                 //   field 1 (hparams map entry), 15 bytes
      0x0a, 0x02, 'l', 'r',                       //     key
      0x12, 0x09,                                 //     value: google.protobuf.Value, 9 bytes
      0x11, 0,    0,   0,   0, 0, 0, 0xe0, 0x3f,  //       number_value (2, fixed64) 0.5
      0x22, 0x01, 'g',                            //   field 4 (group_name)
  });
  EXPECT_EQ(encode_session_start_content({{"lr", 0.5}}, "g", 0.0), expected);
}

TEST(HParams, StringLiteralValuesAreStringsNotBools) {
  // Guards the C++20 variant rule we rely on: before it, "adam" would have become `true`.
  const std::map<std::string, HParamValue> values = {{"optimizer", "adam"}};
  const HParamsPluginData data =
      decode_hparams_plugin_data(encode_session_start_content(values, "", 0.0));
  const auto& start = std::get<SessionStartInfo>(data.data);
  ASSERT_EQ(start.hparams.size(), 1u);
  EXPECT_EQ(start.hparams.at("optimizer"), HParamValue(std::string("adam")));
}

TEST(HParams, SessionEndContentMatchesHandEncodedBytes) {
  // HParamsPluginData{session_end_info{status: STATUS_FAILURE, end_time_secs: 2.0}}
  EXPECT_EQ(encode_session_end_content(SessionStatus::failure, 2.0),
            bytes_of({0x22, 0x0b, 0x08, 0x02, 0x11, 0, 0, 0, 0, 0, 0, 0, 0x40}));
}

TEST_F(TensorboardTest, HParamsRoundTrip) {
  const std::vector<HParamSpec> hparam_specs = {
      {.name = "model",
       .type = HParamType::string,
       .domain_discrete = {std::string("bert4rec"), std::string("sasrec")}},
      {.name = "lr", .type = HParamType::float64, .domain_interval = std::pair{1e-4, 1e-2}},
      {.name = "use_genre", .type = HParamType::boolean},
      {.name = "hidden", .type = HParamType::float64, .domain_discrete = {64.0, 128.0}},
  };
  const std::vector<MetricSpec> metric_specs = {
      {.tag = "test/NDCG@10"},
      {.tag = "valid/NDCG@10",
       .display_name = "valid NDCG@10",
       .dataset_type = DatasetType::validation},
  };
  const std::map<std::string, HParamValue> values = {
      {"model", std::string("bert4rec")},
      {"lr", 0.001},
      {"use_genre", true},
      {"hidden", 0.0},  // zero is a real value in a oneof and must survive
  };
  fs::path path;
  {
    EventWriter writer(dir_);
    write_hparams_config(writer, hparam_specs, metric_specs, 1500.0);
    write_session_start(writer, values, "group-a", 1600.0);
    writer.add_scalar("test/NDCG@10", 0.3125, 10, 1650.0);
    write_session_end(writer, SessionStatus::success, 1700.0);
    path = writer.path();
  }
  const std::vector<Event> events = read_event_file(path);
  ASSERT_EQ(events.size(), 5u);

  auto check_hparams_value = [](const Event& e, std::string_view tag) -> const SummaryValue& {
    EXPECT_EQ(e.step, 0);
    EXPECT_EQ(e.values.size(), 1u);
    const SummaryValue& v = e.values.at(0);
    EXPECT_EQ(v.tag, tag);
    EXPECT_EQ(v.plugin_name, "hparams");
    EXPECT_FALSE(v.simple_value);
    // TensorBoard's NULL_TENSOR: DT_FLOAT, shape [0], no values.
    EXPECT_TRUE(v.tensor);
    if (v.tensor) {
      EXPECT_EQ(v.tensor->dtype, 1);
      EXPECT_EQ(v.tensor->shape, std::vector<std::int64_t>{0});
      EXPECT_TRUE(v.tensor->float_val.empty());
    }
    return v;
  };

  // Experiment.
  const SummaryValue& exp_value = check_hparams_value(events[1], hparams_experiment_tag);
  const HParamsPluginData exp_data = decode_hparams_plugin_data(exp_value.plugin_content);
  EXPECT_EQ(exp_data.version, 0);
  const auto* experiment = std::get_if<HParamsExperiment>(&exp_data.data);
  ASSERT_NE(experiment, nullptr);
  EXPECT_EQ(experiment->time_created_secs, 1500.0);
  ASSERT_EQ(experiment->hparams.size(), 4u);
  EXPECT_EQ(experiment->hparams[0].name, "model");
  EXPECT_EQ(experiment->hparams[0].type, HParamType::string);
  EXPECT_EQ(experiment->hparams[0].domain_discrete,
            (std::vector<HParamValue>{std::string("bert4rec"), std::string("sasrec")}));
  EXPECT_EQ(experiment->hparams[1].name, "lr");
  EXPECT_EQ(experiment->hparams[1].domain_interval, (std::pair{1e-4, 1e-2}));
  EXPECT_TRUE(experiment->hparams[1].domain_discrete.empty());
  EXPECT_EQ(experiment->hparams[2].type, HParamType::boolean);
  EXPECT_FALSE(experiment->hparams[2].domain_interval);
  EXPECT_EQ(experiment->hparams[3].domain_discrete, (std::vector<HParamValue>{64.0, 128.0}));
  ASSERT_EQ(experiment->metrics.size(), 2u);
  EXPECT_EQ(experiment->metrics[0].tag, "test/NDCG@10");
  EXPECT_EQ(experiment->metrics[0].group, "");
  EXPECT_EQ(experiment->metrics[1].tag, "valid/NDCG@10");
  EXPECT_EQ(experiment->metrics[1].display_name, "valid NDCG@10");
  EXPECT_EQ(experiment->metrics[1].dataset_type, DatasetType::validation);

  // Session start.
  const SummaryValue& start_value = check_hparams_value(events[2], hparams_session_start_tag);
  EXPECT_EQ(events[2].wall_time, 1600.0);
  const HParamsPluginData start_data = decode_hparams_plugin_data(start_value.plugin_content);
  const auto* start = std::get_if<SessionStartInfo>(&start_data.data);
  ASSERT_NE(start, nullptr);
  EXPECT_EQ(start->hparams, values);
  EXPECT_EQ(start->group_name, "group-a");
  EXPECT_EQ(start->start_time_secs, 1600.0);

  // The metric is an ordinary scalar in the same run.
  EXPECT_EQ(events[3].values.at(0).tag, "test/NDCG@10");
  EXPECT_EQ(events[3].values.at(0).scalar(), 0.3125);

  // Session end.
  const SummaryValue& end_value = check_hparams_value(events[4], hparams_session_end_tag);
  const HParamsPluginData end_data = decode_hparams_plugin_data(end_value.plugin_content);
  const auto* end = std::get_if<SessionEndInfo>(&end_data.data);
  ASSERT_NE(end, nullptr);
  EXPECT_EQ(end->status, SessionStatus::success);
  EXPECT_EQ(end->end_time_secs, 1700.0);
}

TEST_F(TensorboardTest, HParamsConfigFromMetricTags) {
  fs::path path;
  {
    EventWriter writer(dir_);
    const std::vector<HParamSpec> specs = {{.name = "seed", .type = HParamType::float64}};
    const std::vector<std::string> tags = {"test/HR@10", "test/NDCG@10"};
    write_hparams_config(writer, specs, tags);
    path = writer.path();
  }
  const std::vector<Event> events = read_event_file(path);
  ASSERT_EQ(events.size(), 2u);
  const auto data = decode_hparams_plugin_data(events[1].values.at(0).plugin_content);
  const auto& experiment = std::get<HParamsExperiment>(data.data);
  ASSERT_EQ(experiment.metrics.size(), 2u);
  EXPECT_EQ(experiment.metrics[0].tag, "test/HR@10");
  EXPECT_EQ(experiment.metrics[1].tag, "test/NDCG@10");
  EXPECT_GT(experiment.time_created_secs, 1.6e9);
}

// ------------------------------------------------------------------ corruption, truncation

namespace {

// Writes a file with the header record and three scalars; returns its path and the byte
// offsets where each record starts.
fs::path write_sample(const fs::path& dir, std::vector<std::size_t>& offsets) {
  fs::path path;
  {
    EventWriter writer(dir, {.start_time = 100.0});
    for (int i = 0; i < 3; ++i) writer.add_scalar("train/loss", 1.0 / (i + 1), i, 101.0 + i);
    path = writer.path();
  }
  const std::string bytes = read_file(path);
  offsets.clear();
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    offsets.push_back(offset);
    std::uint64_t length = 0;
    std::memcpy(&length, bytes.data() + offset, 8);  // little-endian host assumed by the test
    offset += 12 + length + 4;
  }
  EXPECT_EQ(offset, bytes.size());
  return path;
}

}  // namespace

TEST_F(TensorboardTest, CorruptedDataByteIsReportedWithFileAndOffset) {
  std::vector<std::size_t> offsets;
  const fs::path path = write_sample(dir_, offsets);
  ASSERT_EQ(offsets.size(), 4u);
  std::string bytes = read_file(path);
  bytes[offsets[2] + 12 + 3] ^= 0x01;  // inside the data of the third record
  write_file(path, bytes);
  const std::string where = "byte offset " + std::to_string(offsets[2]);
  expect_error_containing([&] { (void)read_event_file(path); },
                          {path.filename().string(), where, "data CRC"});
  // Tolerating a truncated tail does not mean tolerating corruption.
  expect_error_containing([&] { (void)read_event_file(path, {.allow_truncated_tail = true}); },
                          {where});
}

TEST_F(TensorboardTest, CorruptedLengthIsReportedWithOffset) {
  std::vector<std::size_t> offsets;
  const fs::path path = write_sample(dir_, offsets);
  std::string bytes = read_file(path);
  bytes[offsets[1]] ^= 0x40;  // length of the second record
  write_file(path, bytes);
  expect_error_containing([&] { (void)read_event_file(path); },
                          {"byte offset " + std::to_string(offsets[1]), "length CRC"});
}

TEST_F(TensorboardTest, CorruptedStoredCrcIsDetected) {
  std::vector<std::size_t> offsets;
  const fs::path path = write_sample(dir_, offsets);
  std::string bytes = read_file(path);
  bytes[offsets[2] - 1] ^= 0x40;  // last byte of the second record's data CRC
  write_file(path, bytes);
  expect_error_containing([&] { (void)read_event_file(path); },
                          {"byte offset " + std::to_string(offsets[1]), "data CRC"});
}

TEST_F(TensorboardTest, TruncatedTailIsAnErrorUnlessAllowed) {
  std::vector<std::size_t> offsets;
  const fs::path path = write_sample(dir_, offsets);
  const auto full_size = fs::file_size(path);
  for (std::uintmax_t cut :
       {std::uintmax_t{1}, std::uintmax_t{4}, std::uintmax_t{10}, full_size - offsets[3] - 5}) {
    SCOPED_TRACE(cut);
    std::vector<std::size_t> ignored;
    const fs::path fresh = write_sample(dir_ / std::to_string(cut), ignored);
    fs::resize_file(fresh, full_size - cut);
    expect_error_containing([&] { (void)read_event_file(fresh); },
                            {"truncated", "byte offset " + std::to_string(offsets[3])});
    const EventFile file = read_event_file_detailed(fresh, {.allow_truncated_tail = true});
    EXPECT_TRUE(file.truncated_tail);
    EXPECT_EQ(file.valid_bytes, offsets[3]);
    ASSERT_EQ(file.events.size(), 3u);
    EXPECT_EQ(file.events[2].step, 1);
    EXPECT_EQ(file.events[2].values.at(0).simple_value, 0.5f);
  }
  // A whole file reads with truncated_tail false.
  const EventFile whole = read_event_file_detailed(path, {.allow_truncated_tail = true});
  EXPECT_FALSE(whole.truncated_tail);
  EXPECT_EQ(whole.valid_bytes, full_size);
  EXPECT_EQ(whole.events.size(), 4u);
}

TEST_F(TensorboardTest, PartialHeaderAfterLastRecordIsATruncatedTail) {
  std::vector<std::size_t> offsets;
  const fs::path path = write_sample(dir_, offsets);
  const auto full_size = fs::file_size(path);
  {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    out.write("\x18\x00\x00", 3);  // the first bytes of a record header, then a crash
  }
  expect_error_containing([&] { (void)read_event_file(path); },
                          {"truncated", "byte offset " + std::to_string(full_size)});
  const EventFile file = read_event_file_detailed(path, {.allow_truncated_tail = true});
  EXPECT_TRUE(file.truncated_tail);
  EXPECT_EQ(file.valid_bytes, full_size);
  EXPECT_EQ(file.events.size(), 4u);
}

TEST_F(TensorboardTest, MissingFileIsAnErrorNamingIt) {
  expect_error_containing([&] { (void)read_event_file(dir_ / "nope"); }, {"nope"});
}
