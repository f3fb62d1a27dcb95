// recrun data — synthesize, convert, inspect and benchmark data sets.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "cli/commands.hpp"
#include "cli/common.hpp"
#include "data/dataset_loader.hpp"
#include "data/load_bench.hpp"
#include "data/seed_layout.hpp"
#include "data/sentence_encoder.hpp"
#include "data/stats.hpp"
#include "data/title_embed.hpp"
#include "data/synth.hpp"
#include "sdk/shared_util.hpp"
#include "recrun/error.hpp"
#include "recrun/text.hpp"
#include "report/data_explorer.hpp"
#include "report/html.hpp"

namespace recrun::cli {
namespace {

namespace fs = std::filesystem;

// A double default as a person writes it (0.8), not as program_options prints it
// (0.80000000000000004): the shortest text that reads back as the same value.
std::string shown(double v) { return fmt::format("{}", v); }

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A numeric flag below its least sensible value (or NaN) is refused, naming the flag; boost
// already refuses text that is not a number of the flag's type.
template <class T>
void require_at_least(const char* flag, T value, T least, const char* meaning = "") {
  if (!(value >= least))  // also catches NaN
    throw ParamError(fmt::format("{} must be at least {}{} (got {})", flag, least, meaning, value));
}

// Refuses to write a data set over another one unless asked to, into something that is not a
// directory, or over any of its files that is not a regular file (a FIFO would hang the write,
// a device would be written into), --force or not.
void check_output_dir(const std::string& flag, const fs::path& out, bool force) {
  std::error_code ec;
  const auto st = fs::status(out, ec);
  if (out.empty()) throw Error(fmt::format("{} is empty: name the directory to write", flag));
  if (fs::exists(st) && !fs::is_directory(st))
    throw Error(fmt::format("{} '{}' is {}, not a directory: name a directory to write the data "
                            "set into",
                            flag, text::printable(out.string()), util::file_kind(st.type())));
  for (const char* name : {"train_ratings.csv", "genres.tsv", "directors.tsv", "writers.tsv",
                           "years.tsv", "titles.tsv", "title_embeddings.tsv", "README.txt"})
    core::check_output_path({flag, out / name, true, false, {}});
  if (!force && fs::exists(out / "train_ratings.csv", ec))
    throw Error(fmt::format("'{}' already holds a data set (train_ratings.csv); pass --force to "
                            "overwrite it or choose another --out/--to",
                            out.string()));
}

// Old metadata files that the new data set does not have would otherwise be read with it.
void remove_stale_files(const fs::path& out, const data::SeedLayoutReport& written) {
  static constexpr const char* kLayout[] = {"genres.tsv", "directors.tsv", "writers.tsv",
                                            "years.tsv",  "titles.tsv",    "title_embeddings.tsv"};
  std::error_code ec;
  for (const char* f : kLayout)
    if (std::find(written.files.begin(), written.files.end(), out / f) == written.files.end())
      fs::remove(out / f, ec);
}

// Computes title vectors from the data set's titles and writes them as title_embeddings.tsv.
fs::path write_computed_title_embeddings(const Dataset& d, const data::TitleEmbedOptions& options,
                                         const fs::path& path) {
  const auto t0 = std::chrono::steady_clock::now();
  const data::TitleEmbeddings emb = data::embed_titles(d.titles, options);
  const DenseFeature& f = emb.feature;
  data::write_title_embeddings(d.item_ids, f, path);
  const auto with = std::count(f.present.begin(), f.present.end(), std::uint8_t{1});
  fmt::print("title embeddings: {} of {} items, {} dimensions (TF-IDF + randomized SVD, {:.1f}% of "
             "the variance kept) in {:.2f}s -> {}\n",
             with, d.num_items(), f.dim, 100.0 * emb.explained, since(t0), path.string());
  return path;
}

int data_synth(const Args& args) {
  data::SynthOptions o;
  std::string out;
  auto desc = po::options_description("options");
  desc.add_options()("help,h", "show this help")(
      "out,o", po::value(&out)->required(), "output directory (created)")(
      "users", po::value(&o.users)->default_value(o.users), "number of users")(
      "items", po::value(&o.items)->default_value(o.items), "number of items")(
      "interactions-per-user", po::value(&o.interactions_per_user)->default_value(o.interactions_per_user, shown(o.interactions_per_user)),
      "mean sequence length")(
      "min-length", po::value(&o.min_length)->default_value(o.min_length), "shortest sequence")(
      "clusters", po::value(&o.clusters)->default_value(o.clusters), "taste clusters")(
      "seed", po::value(&o.seed)->default_value(o.seed), "random seed (same seed, same bytes)")(
      "genres", po::value(&o.genres)->default_value(o.genres), "number of genres")(
      "directors", po::value(&o.directors)->default_value(o.directors), "number of directors (0: items/4)")(
      "writers", po::value(&o.writers)->default_value(o.writers), "number of writers (0: items/3)")(
      "title-dim", po::value(&o.title_dim)->default_value(o.title_dim),
      "title embedding length (0: no title_embeddings.tsv)")(
      "signal", po::value(&o.signal)->default_value(o.signal),
      "what drives the next item: item (Markov successor), genre (genre chain), director (same "
      "director), writer (same writer) or none")(
      "sequential", po::value(&o.sequential)->default_value(o.sequential, shown(o.sequential)),
      "probability that a step follows the signal")(
      "affinity", po::value(&o.affinity)->default_value(o.affinity, shown(o.affinity)),
      "probability that any other step stays in the user's cluster")(
      "purity", po::value(&o.purity)->default_value(o.purity, shown(o.purity)),
      "probability that a genre/director/writer comes from the item's cluster's pool")(
      "popularity", po::value(&o.popularity)->default_value(o.popularity, shown(o.popularity)),
      "Zipf exponent of item popularity (0: uniform)")(
      "tie-rate", po::value(&o.tie_rate)->default_value(o.tie_rate, shown(o.tie_rate)),
      "probability that an interaction repeats the previous timestamp")(
      "force", "overwrite a data set already in --out");
  const auto vm = parse(desc, args, "recrun data synth --out DIR [--users N --items N ...]");
  if (vm.count("help")) return 0;
  data::validate(o);
  check_output_dir("--out", out, vm.count("force") > 0);

  const auto t0 = std::chrono::steady_clock::now();
  const data::SynthResult result = data::synthesize(o);
  const double generated = since(t0);
  const auto report = data::write_seed_layout(result.dataset, out);
  remove_stale_files(out, report);
  {
    std::ofstream readme(fs::path(out) / "README.txt", std::ios::binary);
    readme << data::synth_readme(o);
    if (!readme) throw Error(fmt::format("cannot write '{}/README.txt'", out));
  }
  const auto& d = result.dataset;
  fmt::print("wrote {}: {} users, {} items, {} interactions (signal '{}') in {:.2f}s (generate {:.2f}s)\n",
             out, d.num_users(), d.num_items(), d.num_interactions(), o.signal, since(t0), generated);
  for (const auto& f : report.files) fmt::print("  {}\n", f.filename().string());
  return 0;
}

int data_convert(const Args& args) {
  HostOptions host;
  std::string from, to, source;
  data::TitleEmbedOptions title;
  auto desc = host_options(host);
  desc.add_options()("from", po::value(&from)->required(), "directory to read")(
      "to", po::value(&to)->required(), "directory to write in the seed_tsv layout")(
      "source", po::value(&source)->default_value("auto"), "data source of --from (auto-detected)")(
      "title-dim", po::value(&title.dim)->default_value(title.dim),
      "compute title embeddings of this length from the titles when the data has titles but no "
      "title vectors (0: do not)")(
      "force", "overwrite a data set already in --to");
  const auto vm = parse(desc, args, "recrun data convert --from DIR --to DIR");
  if (vm.count("help")) return 0;
  require_at_least<std::int64_t>("--title-dim", title.dim, 0, " (0: no title embeddings)");
  std::error_code ec;
  if (fs::exists(to, ec) && fs::equivalent(from, to, ec))
    throw Error("--from and --to are the same directory; write the seed layout elsewhere");
  check_output_dir("--to", to, vm.count("force") > 0);

  Registry registry;
  load_registry(host, registry, false);
  const auto t0 = std::chrono::steady_clock::now();
  // The source's own features, not vectors derived at load: convert computes them itself.
  const auto loaded =
      data::load_dataset(registry, from, source, data::LoadOptions{.derive_title_vectors = false});
  auto report = data::write_seed_layout(loaded.dataset, to);
  if (title.dim > 0 && !loaded.dataset.titles.empty() && !loaded.dataset.dense.count("title"))
    report.files.push_back(
        write_computed_title_embeddings(loaded.dataset, title, fs::path(to) / "title_embeddings.tsv"));
  remove_stale_files(to, report);
  // The licence travels with the data (MovieLens's terms require it for redistribution).
  for (const char* name : {"README.txt", "README", "LICENSE", "LICENSE.txt"})
    if (fs::is_regular_file(fs::path(from) / name, ec))
      fs::copy_file(fs::path(from) / name, fs::path(to) / name, fs::copy_options::overwrite_existing, ec);
  const auto& d = loaded.dataset;
  fmt::print("converted {} ({}) -> {} (seed_tsv): {} users, {} items, {} interactions in {:.2f}s\n",
             from, loaded.source, to, d.num_users(), d.num_items(), d.num_interactions(), since(t0));
  for (const auto& f : report.files) fmt::print("  {}\n", f.filename().string());
  for (const auto& f : report.skipped_features)
    fmt::print(stderr, "warning: feature '{}' has no file in the seed layout; not written\n", f);
  return 0;
}

int data_stats(const Args& args) {
  HostOptions host;
  std::string dir, source, out;
  std::int64_t top = 10;
  auto desc = host_options(host);
  desc.add_options()("dir", po::value(&dir)->required(), "data directory")(
      "source", po::value(&source)->default_value("auto"), "data source (auto-detected)")(
      "top", po::value(&top)->default_value(10), "length of the top-items and top-values lists")(
      "no-cache", "parse the files even when a cache is present")(
      "html", "write the data explorer page (self-contained HTML) instead of the text report")(
      "out,o", po::value(&out), "with --html: the file to write (default: DATASET-stats.html)")(
      "force", "with --out: replace an existing file");
  po::positional_options_description pos;
  pos.add("dir", 1);
  const auto vm =
      parse(desc, args, "recrun data stats DIR [--top N] [--html [--out FILE [--force]]]", &pos);
  if (vm.count("help")) return 0;
  require_at_least<std::int64_t>("--top", top, 1);
  const bool html = vm.count("html") > 0;
  if (!out.empty() && !html) throw ParamError("--out needs --html (the text report goes to stdout)");
  if (out == "-") throw ParamError("--out -: the data explorer is an HTML page; name a file");
  Registry registry;
  load_registry(host, registry, false);
  // The page may replace neither the data set's files nor a device (checked before the load).
  core::OutputRequest target{"--out", out, vm.count("force") > 0, true,
                             dataset_input_paths(registry, dir, source)};
  if (html && !out.empty()) core::check_output_path(target);
  const auto t0 = std::chrono::steady_clock::now();
  data::LoadOptions options;
  options.use_cache = vm.count("no-cache") == 0;
  const auto loaded = data::load_dataset(registry, dir, source, options);
  const double load_s = since(t0);
  const auto stats = data::compute_stats(loaded.dataset, top);
  if (html) {
    const auto explorer = data::compute_explorer_stats(loaded.dataset);
    const fs::path path = out.empty() ? fs::path(report::html::file_stem(loaded.dataset.name) + "-stats.html") : fs::path(out);
    if (out.empty()) {  // recrun's own name: replaced without --force, but never a device
      target.path = path;
      target.named_by_user = false;
      core::check_output_path(target);
    }
    const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    report::html::write_file_atomically(
        path, report::render_data_explorer(loaded.dataset, stats, explorer, loaded.source,
                                           fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", fmt::gmtime(now))));
    fmt::print("data explorer of {} ({} users, {} items, {} interactions) -> {}\n", dir, stats.users,
               stats.items, stats.interactions, path.string());
    return 0;
  }
  fmt::print("{}", data::format_stats(loaded.dataset, stats));
  // The reader's warnings, which loads from the cache do not repeat.
  fmt::print("\nwarnings when the files were read: {}\n",
             loaded.warnings.empty() ? std::string("none") : std::to_string(loaded.warnings.size()));
  for (const auto& [w, n] : loaded.warnings)
    fmt::print("  {}{}\n", text::terminal_safe(w), n > 1 ? fmt::format(" ({} times)", n) : "");
  fmt::print("\nloaded by '{}' in {:.2f}s{}\n", loaded.source, load_s,
             loaded.from_cache ? " (from the cache)" : "");
  return 0;
}

int data_bench(const Args& args) {
  HostOptions host;
  std::string dir, source;
  data::LoadBenchOptions options;
  auto desc = host_options(host);
  desc.add_options()("dir", po::value(&dir)->required(), "data directory")(
      "source", po::value(&source)->default_value("auto"), "data source (auto-detected)")(
      "repeat", po::value(&options.repeats)->default_value(options.repeats),
      "timed repetitions (the median is reported)")(
      "no-naive", "skip the naive getline+stringstream baseline");
  po::positional_options_description pos;
  pos.add("dir", 1);
  const auto vm = parse(desc, args, "recrun data bench DIR [--repeat N]", &pos);
  if (vm.count("help")) return 0;
  require_at_least("--repeat", options.repeats, 1);
  options.naive = vm.count("no-naive") == 0;
  Registry registry;
  load_registry(host, registry, false);
  const auto result = data::bench_load(registry, dir, source, options);
  fmt::print("{}", data::format_bench(result));
  return 0;
}

// The text a sentence encoder reads for each item: its title, or with --with-genres its title and
// genres ("Toy Story. Genres: Adventure, Animation."); empty for an item without a title.
std::vector<std::string> encoder_texts(const Dataset& d, bool with_genres) {
  const CategoricalFeature* genres = nullptr;
  if (with_genres) {
    const auto it = d.categorical.find("genre");
    if (it == d.categorical.end())
      throw Error(fmt::format("--with-genres: data set '{}' has no genres", d.name));
    genres = &it->second;
  }
  std::vector<std::string> texts(static_cast<std::size_t>(d.num_items()));
  for (std::int64_t i = 0; i < d.num_items(); ++i) {
    const std::string& title = d.titles[static_cast<std::size_t>(i)];
    if (std::all_of(title.begin(), title.end(), [](unsigned char c) { return std::isspace(c); }))
      continue;
    std::string text = title;
    if (genres && !genres->of(i).empty()) {
      std::vector<std::string_view> names;
      for (const std::int32_t v : genres->of(i)) names.emplace_back(genres->vocab[v]);
      text += fmt::format(". Genres: {}.", fmt::join(names, ", "));
    }
    texts[static_cast<std::size_t>(i)] = std::move(text);
  }
  return texts;
}

// Runs the TorchScript sentence encoder over the data set's titles and writes the vectors.
void write_encoded_title_embeddings(const Dataset& d, const data::SentenceEncoder& encoder,
                                    bool with_genres, const fs::path& path) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<std::string> all = encoder_texts(d, with_genres);
  std::vector<std::string> texts;
  std::vector<std::int64_t> items;
  for (std::size_t i = 0; i < all.size(); ++i)
    if (!all[i].empty()) {
      texts.push_back(all[i]);
      items.push_back(static_cast<std::int64_t>(i));
    }
  if (texts.empty())
    throw Error(fmt::format("data set '{}' has no non-blank titles to embed", d.name));
  // A live line on a terminal; in a log, a line per tenth of the way.
  const bool live = ::isatty(STDERR_FILENO) != 0;
  std::int64_t shown_tenth = 0;
  const torch::Tensor v = encoder.embed(texts, [&](std::int64_t done, std::int64_t total) {
    if (live) {
      fmt::print(stderr, "\rembedding titles: {}/{} ({:.0f}%)", done, total, 100.0 * done / total);
      if (done == total) fmt::print(stderr, "\n");
    } else if (const std::int64_t tenth = 10 * done / total; tenth > shown_tenth) {
      shown_tenth = tenth;
      fmt::print(stderr, "embedding titles: {}/{} ({}%)\n", done, total, 10 * tenth);
    }
    std::fflush(stderr);
  });
  DenseFeature f;
  f.dim = v.size(1);
  f.values.assign(static_cast<std::size_t>(d.num_items() * f.dim), 0.0f);
  f.present.assign(static_cast<std::size_t>(d.num_items()), 0);
  const auto rows = v.accessor<float, 2>();
  for (std::size_t r = 0; r < items.size(); ++r) {
    const auto i = static_cast<std::size_t>(items[r]);
    f.present[i] = 1;
    for (std::int64_t k = 0; k < f.dim; ++k)
      f.values[i * static_cast<std::size_t>(f.dim) + static_cast<std::size_t>(k)] =
          rows[static_cast<std::int64_t>(r)][k];
  }
  data::write_title_embeddings(d.item_ids, f, path);
  const auto& o = encoder.options();
  fmt::print("title embeddings: {} of {} items, {} dimensions (TorchScript {}, {} pooling, {} "
             "WordPiece of {} entries, at most {} tokens{}) in {:.2f}s -> {}\n",
             items.size(), d.num_items(), f.dim, o.model.filename().string(),
             o.pooling == data::Pooling::mean ? "mean" : "cls",
             encoder.tokenizer().lower_case() ? "uncased" : "cased", encoder.tokenizer().size(),
             o.max_tokens, with_genres ? ", title and genres" : "", since(t0), path.string());
}

int data_embed_titles(const Args& args) {
  HostOptions host;
  std::string dir, source, out, encoder_name, pooling, case_mode;
  data::TitleEmbedOptions o;
  data::SentenceEncoderOptions so;
  std::string model, vocab;
  auto desc = host_options(host);
  desc.add_options()("dir", po::value(&dir)->required(), "data directory with titles")(
      "source", po::value(&source)->default_value("auto"), "data source (auto-detected)")(
      "encoder", po::value(&encoder_name)->default_value("tfidf"),
      "tfidf (built in: TF-IDF + SVD of the titles' words, no model needed) or torchscript (a "
      "sentence encoder exported with torch.jit, with --model and --vocab)")(
      "out,o", po::value(&out), "file to write (default: DIR/title_embeddings.tsv)")(
      "force", "overwrite an existing output file");
  po::options_description tfidf("--encoder tfidf");
  tfidf.add_options()("dim", po::value(&o.dim)->default_value(o.dim), "vector length")(
      "buckets", po::value(&o.buckets)->default_value(o.buckets), "hash buckets for the title terms")(
      "seed", po::value(&o.seed)->default_value(o.seed), "seed of the random projection");
  po::options_description ts("--encoder torchscript");
  ts.add_options()("model", po::value(&model), "TorchScript file of the encoder (docs/data.md: export)")(
      "vocab", po::value(&vocab), "the model's WordPiece vocab.txt")(
      "max-tokens", po::value(&so.max_tokens)->default_value(so.max_tokens),
      "tokens per title, [CLS] and [SEP] included (longer titles are truncated)")(
      "pooling", po::value(&pooling)->default_value("mean"),
      "mean (over the attention mask) or cls, for a model returning token embeddings")(
      "case", po::value(&case_mode)->default_value("auto"),
      "lower (lower-case and strip accents: uncased models), keep (cased models) or auto (cased "
      "when the vocabulary has upper-case entries)")(
      "batch-size", po::value(&so.batch_size)->default_value(so.batch_size), "titles per forward call")(
      "with-genres", "embed each title with its genres' names (\"Title. Genres: A, B.\")");
  desc.add(tfidf).add(ts);
  po::positional_options_description pos;
  pos.add("dir", 1);
  const auto vm = parse(desc, args,
                        "recrun data embed-titles DIR [--dim 64] [--out FILE]\n"
                        "       recrun data embed-titles DIR --encoder torchscript --model FILE.pt "
                        "--vocab vocab.txt [--max-tokens N] [--pooling mean|cls]",
                        &pos);
  if (vm.count("help")) return 0;
  const bool torchscript = encoder_name == "torchscript";
  if (!torchscript && encoder_name != "tfidf")
    throw ParamError(fmt::format("--encoder must be tfidf or torchscript (got '{}')", encoder_name));
  // Each encoder's flags belong to it alone: one given to the other is a mistake, not a no-op.
  const auto given = [&](const char* flag) { return vm.count(flag) && !vm[flag].defaulted(); };
  for (const char* flag : {"dim", "buckets", "seed"})
    if (torchscript && given(flag))
      throw ParamError(fmt::format("--{} belongs to --encoder tfidf; a TorchScript encoder's "
                                   "vectors have the model's own length",
                                   flag));
  for (const char* flag : {"model", "vocab", "max-tokens", "pooling", "case", "batch-size", "with-genres"})
    if (!torchscript && given(flag))
      throw ParamError(fmt::format("--{} needs --encoder torchscript", flag));
  if (torchscript) {
    if (model.empty()) throw ParamError("--encoder torchscript needs --model FILE.pt");
    if (vocab.empty()) throw ParamError("--encoder torchscript needs --vocab vocab.txt (the model's)");
    so.model = model;
    so.vocab = vocab;
    so.pooling = data::parse_pooling(pooling, "--pooling");
    so.case_mode = data::parse_case_mode(case_mode, "--case");
    require_at_least<std::int64_t>("--max-tokens", so.max_tokens, 2, " ([CLS] and [SEP])");
    require_at_least<std::int64_t>("--batch-size", so.batch_size, 1);
  } else {
    require_at_least<std::int64_t>("--dim", o.dim, 1);
    require_at_least<std::int64_t>("--buckets", o.buckets, 16);
  }
  const fs::path default_path = fs::path(dir) / "title_embeddings.tsv";
  const fs::path path = out.empty() ? default_path : fs::path(out);
  Registry registry;
  load_registry(host, registry, false);
  std::error_code ec;
  const std::string source_name = data::resolve_source(registry, dir, source);
  // Never over the data set's own inputs (its interactions, titles, ...), --force or not; the
  // title vectors this command makes are the one input it may replace.
  core::OutputRequest target{"--out", path, vm.count("force") > 0, true, {}};
  for (auto& input : dataset_input_paths(registry, dir, source_name)) {
    std::error_code same;
    if (!fs::equivalent(input.path, default_path, same) && input.path != default_path)
      target.protect.push_back(std::move(input));
  }
  core::check_output_path(target);
  // The model and its vocabulary are checked before the data set is read.
  std::optional<data::SentenceEncoder> encoder;
  if (torchscript) encoder.emplace(so);
  data::LoadOptions options;
  options.use_cache = false;  // the output changes the data set: never read a stale cache
  options.derive_title_vectors = false;
  const auto loaded = data::load_dataset(registry, dir, source, options);
  if (loaded.dataset.titles.empty())
    throw Error(fmt::format("data set '{}' (source '{}') has no titles to embed; the seed layout "
                            "reads them from titles.tsv, MovieLens from movies.csv/movies.dat",
                            dir, loaded.source));
  if (encoder)
    write_encoded_title_embeddings(loaded.dataset, *encoder, vm.count("with-genres") > 0, path);
  else
    write_computed_title_embeddings(loaded.dataset, o, path);
  // A source that does not read the file would silently keep its own (or derived) vectors.
  if (fs::equivalent(path, default_path, ec)) {
    const auto inputs = registry.data_source(source_name).make()->inputs(dir);
    if (std::none_of(inputs.begin(), inputs.end(),
                     [&](const fs::path& p) { return fs::equivalent(p, path, ec); }))
      fmt::print(stderr,
                 "note: the '{}' source does not read {}; `recrun data convert` the data set to "
                 "the seed_tsv layout and put the file there to use these vectors\n",
                 source_name, path.filename().string());
  }
  return 0;
}

struct Sub {
  const char* name;
  const char* summary;
  int (*run)(const Args&);
};

constexpr Sub kSubs[] = {
    {"synth", "write a synthetic data set with planted structure (seed_tsv layout)", data_synth},
    {"convert", "convert a data set (e.g. MovieLens) to the seed_tsv layout", data_convert},
    {"stats", "describe a data set: sizes, length distribution, sparsity, features", data_stats},
    {"bench", "time loading a data set: parse, cached, naive baseline", data_bench},
    {"embed-titles", "compute title vectors from the titles' text (title_embeddings.tsv), built "
                     "in or with a TorchScript sentence encoder",
     data_embed_titles},
};

void data_usage(std::FILE* out) {
  fmt::print(out, "usage: recrun data <subcommand> [options]   (--help on each for details)\n\n");
  for (const auto& s : kSubs) fmt::print(out, "  {:<13} {}\n", s.name, s.summary);
}

}  // namespace

int cmd_data(const Args& args) {
  if (args.empty()) {
    data_usage(stderr);
    return 2;
  }
  if (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    data_usage(stdout);
    return 0;
  }
  const Args rest(args.begin() + 1, args.end());
  for (const auto& s : kSubs)
    if (args[0] == s.name) return s.run(rest);
  std::vector<std::string> names;
  for (const auto& s : kSubs) names.emplace_back(s.name);
  std::string hint;
  if (auto m = did_you_mean(args[0], names)) hint = fmt::format(" (did you mean '{}'?)", *m);
  throw Error(fmt::format("unknown data subcommand '{}'{}; subcommands: {}", args[0], hint,
                          fmt::join(names, ", ")));
}

}  // namespace recrun::cli
