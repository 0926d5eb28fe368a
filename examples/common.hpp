#pragma once
// What the examples share: command-line numbers, the --algorithm choice, JSON values, and SVG
// line charts.
#include <metalearn/meta/anil.hpp>
#include <metalearn/meta/cavia.hpp>
#include <metalearn/meta/imaml.hpp>
#include <metalearn/meta/maml.hpp>
#include <metalearn/meta/maml_plus_plus.hpp>
#include <metalearn/meta/meta_sgd.hpp>
#include <metalearn/meta/reptile.hpp>
#include <metalearn/nn/context.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace examples {

/// A bad command line: the message says what and how to fix it (exit status 2).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// The integer `text` of `flag`, in [lo, hi]; throws UsageError otherwise.
inline long parse_integer(const std::string& flag, const std::string& text, long lo, long hi) {
  std::size_t used = 0;
  long value = 0;
  try {
    value = std::stol(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty()) throw UsageError(flag + " expects an integer, got '" + text + "'");
  if (value < lo || value > hi)
    throw UsageError(flag + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + text);
  return value;
}

/// The finite number > 0 `text` of `flag`; throws UsageError otherwise.
inline double parse_real(const std::string& flag, const std::string& text) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || !std::isfinite(value) || value <= 0)
    throw UsageError(flag + " expects a finite number > 0, got '" + text + "'");
  return value;
}

/// Walks a command line of `--switch` and `--flag value` items: returns false at --help or -h,
/// sets `quiet` at --quiet and hands every other flag and its value to `value(flag, v)`, which
/// throws UsageError for a flag it does not know. Throws UsageError for a bare word or a flag
/// without its value.
template <class Value>
bool parse_flags(const std::vector<std::string>& args, bool& quiet, Value&& value) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--help" || flag == "-h") return false;
    if (flag == "--quiet") {
      quiet = true;
      continue;
    }
    if (flag.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + flag + "' (flags start with --)");
    if (i + 1 >= args.size()) throw UsageError(flag + " needs a value");
    value(flag, args[++i]);
  }
  return true;
}

/// Layer widths "256,128" of `flag`, each in [1, 100000]; throws UsageError (naming `example`,
/// e.g. "256,128") for an empty list, a trailing comma or a bad number.
template <class Int>
std::vector<Int> parse_widths(const std::string& flag, const std::string& text, const std::string& example) {
  std::vector<Int> out;
  std::stringstream list(text);
  for (std::string w; std::getline(list, w, ',');) out.push_back(static_cast<Int>(parse_integer(flag, w, 1, 100000)));
  if (out.empty() || text.back() == ',') throw UsageError(flag + " expects widths like " + example);
  return out;
}

/// Writes `text` to `path` (replacing it); throws std::runtime_error naming `program` and the file.
inline void write_file(const std::string& program, const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error(program + ": cannot write '" + path + "'");
}

/// The meta-learning algorithms the examples offer (`--algorithm`), all on one inner loop.
enum class Algorithm { maml, meta_sgd, maml_pp, anil, reptile, imaml, cavia };

/// "maml", "meta-sgd", "maml++", "anil": the flag's values.
inline const char* algorithm_key(Algorithm a) {
  switch (a) {
    case Algorithm::meta_sgd: return "meta-sgd";
    case Algorithm::maml_pp: return "maml++";
    case Algorithm::anil: return "anil";
    case Algorithm::reptile: return "reptile";
    case Algorithm::imaml: return "imaml";
    case Algorithm::cavia: return "cavia";
    default: return "maml";
  }
}
/// "MAML", "Meta-SGD", "MAML++", "ANIL": for tables and figures.
inline const char* algorithm_label(Algorithm a) {
  switch (a) {
    case Algorithm::meta_sgd: return "Meta-SGD";
    case Algorithm::maml_pp: return "MAML++";
    case Algorithm::anil: return "ANIL";
    case Algorithm::reptile: return "Reptile";
    case Algorithm::imaml: return "iMAML";
    case Algorithm::cavia: return "CAVIA";
    default: return "MAML";
  }
}
/// The algorithm named `text` of `flag`; throws UsageError otherwise.
inline Algorithm parse_algorithm(const std::string& flag, const std::string& text) {
  for (Algorithm a : {Algorithm::maml, Algorithm::meta_sgd, Algorithm::maml_pp, Algorithm::anil, Algorithm::reptile,
                      Algorithm::imaml, Algorithm::cavia})
    if (text == algorithm_key(a)) return a;
  throw UsageError(flag + " expects maml, meta-sgd, maml++, anil, reptile, imaml or cavia, got '" + text + "'");
}

/// The settings of the inner loop that every algorithm shares, and each one's own.
struct InnerLoopFlags {
  Algorithm algorithm = Algorithm::maml;
  int order = 2;                        // 1 or 2
  int inner_steps = 1;
  double inner_lr = 1e-3;               // α (MAML, ANIL); the initial rate(s) (Meta-SGD, MAML++)
  double inner_lr_max = 0;              // Meta-SGD: > 0 draws α ~ U[inner_lr, inner_lr_max]
  long first_order_iterations = 0;      // MAML++: derivative-order annealing
  long multi_step_iterations = 0;       // MAML++: multi-step loss annealing
  long inner_batch = 0;                 // Reptile: support examples per inner step (0: all)
  bool inner_adam = false;              // Reptile: Adam (β₁ = 0) instead of SGD in the inner loop
  double lambda = 1.0;                  // iMAML: the proximal term's strength
  int cg_iterations = 5;                // iMAML: conjugate-gradient iterations
  double inner_clip = 0;                // iMAML: clip each entry of the inner direction (0: off)
  long context = 5;                     // CAVIA: context parameters appended to the inputs
  double task_clip = 10;                // CAVIA: clamp of each task's meta-gradient (0: off)
  bool context_from_support = false;    // CAVIA: φ₀ = W_s s + b_s from the support set's mean [x; y]
  long summary_size = 0;                // CAVIA's support start: rows of x plus rows of y
  int threads = 1;
};

/// Builds the chosen algorithm on `model` and returns f(algorithm).
template <class Model, class F>
decltype(auto) with_algorithm(const InnerLoopFlags& c, const Model& model, F&& f) {
  const metalearn::Order order = c.order == 1 ? metalearn::Order::first : metalearn::Order::second;
  switch (c.algorithm) {
    case Algorithm::meta_sgd: {
      metalearn::MetaSgdOptions o;
      o.initial_lr = c.inner_lr;
      o.initial_lr_max = c.inner_lr_max;
      o.inner_steps = c.inner_steps;
      o.order = order;
      o.threads = c.threads;
      metalearn::MetaSgd<Model> a(model, o);
      return f(a);
    }
    case Algorithm::maml_pp: {
      metalearn::MamlPlusPlusOptions o;
      o.initial_lr = c.inner_lr;
      o.inner_steps = c.inner_steps;
      o.order = order;
      o.first_order_iterations = c.first_order_iterations;
      o.multi_step_iterations = c.multi_step_iterations;
      o.threads = c.threads;
      metalearn::MamlPlusPlus<Model> a(model, o);
      return f(a);
    }
    case Algorithm::reptile: {
      metalearn::ReptileOptions o;
      o.inner_steps = c.inner_steps;
      o.inner_lr = c.inner_lr;
      o.inner_batch = static_cast<metalearn::Index>(c.inner_batch);
      o.inner_optimizer = c.inner_adam ? metalearn::InnerOptimizer::adam : metalearn::InnerOptimizer::sgd;
      o.threads = c.threads;
      metalearn::Reptile<Model> a(model, o);
      return f(a);
    }
    case Algorithm::imaml: {
      metalearn::ImamlOptions o;
      o.lambda = c.lambda;
      o.inner_lr = c.inner_lr;
      o.inner_steps = c.inner_steps;
      o.cg_iterations = c.cg_iterations;
      o.inner_clip.value = c.inner_clip;
      o.threads = c.threads;
      metalearn::Imaml<Model> a(model, o);
      return f(a);
    }
    case Algorithm::cavia: {
      metalearn::CaviaOptions o;
      o.inner_lr = c.inner_lr;
      o.inner_steps = c.inner_steps;
      o.order = order;
      o.task_clip = c.task_clip;
      if (c.context_from_support) {
        o.context_start = metalearn::ContextStart::support;
        o.summary_size = static_cast<metalearn::Index>(c.summary_size);
      }
      o.threads = c.threads;
      metalearn::Cavia<metalearn::nn::Context<Model>> a(metalearn::nn::Context<Model>(model, c.context), o);
      return f(a);
    }
    case Algorithm::anil: {
      metalearn::AnilOptions o;
      o.inner_lr = c.inner_lr;
      o.inner_steps = c.inner_steps;
      o.order = order;
      o.threads = c.threads;
      metalearn::Anil<Model> a(model, o);
      return f(a);
    }
    default: {
      metalearn::MamlOptions o;
      o.inner_lr = c.inner_lr;
      o.inner_steps = c.inner_steps;
      o.order = order;
      o.threads = c.threads;
      metalearn::Maml<Model> a(model, o);
      return f(a);
    }
  }
}

namespace json {
/// A JSON number (null when not finite), 9 significant digits.
inline std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream out;
  out << std::setprecision(9) << v;
  return out.str();
}
/// A JSON string literal.
inline std::string string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(ch)));
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}
/// A JSON array of f(value) for each value.
template <class T, class F>
std::string list(const std::vector<T>& values, F&& f) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + f(values[i]);
  return out + "]";
}
/// A JSON array of numbers.
inline std::string numbers(const std::vector<double>& values) { return list(values, number); }
}  // namespace json

namespace svg {
/// A tick label: 2, 1.5, -0.5, 0.891 (no trailing zeros).
inline std::string tick(double v) {
  std::ostringstream out;
  out << std::defaultfloat << std::setprecision(3) << (std::abs(v) < 1e-12 ? 0.0 : v);
  return out.str();
}

/// One curve of a line chart.
struct Series {
  std::string label;          ///< legend text
  std::string color;          ///< stroke colour
  std::vector<double> x, y;   ///< points (non-finite y values are skipped)
  std::string dash;           ///< stroke-dasharray, empty for a solid line
  bool markers = false;       ///< a dot at each point
};

/// One panel: a title, axis labels, its curves and optional horizontal reference lines
/// (e.g. a published number), drawn at (ox, oy) with size w × h.
struct Panel {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  std::vector<std::pair<double, std::string>> references;  ///< y value and its label
  bool log_y = false;                                        ///< logarithmic y axis
  bool legend_bottom = false;                                ///< legend at the bottom right (else top left)
};

namespace detail {
// Ticks of a log10 axis from lo to hi (in log10 units): 1, 2 and 5 times the powers of ten
// inside, thinned to at most 8.
inline std::vector<double> log_ticks(double lo, double hi) {
  std::vector<double> ticks;
  for (int e = static_cast<int>(std::floor(lo)); e <= static_cast<int>(std::ceil(hi)); ++e)
    for (double m : {1.0, 2.0, 5.0}) {
      const double t = std::log10(m) + e;
      if (t >= lo && t <= hi) ticks.push_back(t);
    }
  while (ticks.size() > 8) {
    std::vector<double> fewer;
    for (std::size_t i = 0; i < ticks.size(); i += 2) fewer.push_back(ticks[i]);
    ticks = fewer;
  }
  return ticks;
}

inline std::vector<double> nice_ticks(double lo, double hi, int target = 5) {
  const double span = hi - lo;
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) ticks.push_back(t);
  return ticks;
}
}  // namespace detail

/// An SVG document of panels side by side, each w × h pixels, with a legend per panel.
inline std::string charts(const std::vector<Panel>& panels, double w = 480, double h = 340) {
  const double ml = 62, mr = 16, mt = 34, mb = 48;
  std::ostringstream out;
  out << std::fixed << std::setprecision(2);
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w * static_cast<double>(panels.size())
      << "\" height=\"" << h << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (std::size_t k = 0; k < panels.size(); ++k) {
    const Panel& p = panels[k];
    const double ox = w * static_cast<double>(k);
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    const auto ty = [&](double y) { return p.log_y ? std::log10(y) : y; };
    for (const Series& s : p.series)
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.y[i]) || (p.log_y && !(s.y[i] > 0))) continue;
        x0 = std::min(x0, s.x[i]);
        x1 = std::max(x1, s.x[i]);
        y0 = std::min(y0, ty(s.y[i]));
        y1 = std::max(y1, ty(s.y[i]));
      }
    for (const auto& r : p.references) {
      y0 = std::min(y0, ty(r.first));
      y1 = std::max(y1, ty(r.first));
    }
    if (!(x1 > x0)) x1 = x0 + 1;
    if (!(y1 > y0)) y1 = y0 + 1;
    const double pad = 0.05 * (y1 - y0);
    y0 -= pad;
    y1 += pad;
    const auto X = [&](double x) { return ox + ml + (x - x0) / (x1 - x0) * (w - ml - mr); };
    const auto Y = [&](double y) { return mt + (y1 - ty(y)) / (y1 - y0) * (h - mt - mb); };
    out << "<text x=\"" << ox + w / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">" << p.title
        << "</text>\n<rect x=\"" << ox + ml << "\" y=\"" << mt << "\" width=\"" << w - ml - mr << "\" height=\""
        << h - mt - mb << "\" fill=\"none\" stroke=\"#444\"/>\n";
    for (double t : detail::nice_ticks(x0, x1))
      out << "<line x1=\"" << X(t) << "\" y1=\"" << h - mb << "\" x2=\"" << X(t) << "\" y2=\"" << h - mb + 5
          << "\" stroke=\"#444\"/><text x=\"" << X(t) << "\" y=\"" << h - mb + 18 << "\" text-anchor=\"middle\">"
          << tick(t) << "</text>\n";
    for (double t : p.log_y ? detail::log_ticks(y0, y1) : detail::nice_ticks(y0, y1)) {
      const double value = p.log_y ? std::pow(10.0, t) : t;
      out << "<line x1=\"" << ox + ml - 5 << "\" y1=\"" << Y(value) << "\" x2=\"" << ox + ml << "\" y2=\"" << Y(value)
          << "\" stroke=\"#444\"/><text x=\"" << ox + ml - 8 << "\" y=\"" << Y(value) + 4 << "\" text-anchor=\"end\">"
          << tick(value) << "</text>\n";
    }
    out << "<text x=\"" << ox + ml + (w - ml - mr) / 2 << "\" y=\"" << h - 10 << "\" text-anchor=\"middle\">"
        << p.x_label << "</text>\n<text transform=\"translate(" << ox + 14 << "," << mt + (h - mt - mb) / 2
        << ") rotate(-90)\" text-anchor=\"middle\">" << p.y_label << "</text>\n";
    for (const auto& r : p.references)
      out << "<line x1=\"" << ox + ml << "\" y1=\"" << Y(r.first) << "\" x2=\"" << ox + w - mr << "\" y2=\""
          << Y(r.first) << "\" stroke=\"#888\" stroke-dasharray=\"3,3\"/><text x=\"" << ox + w - mr - 4 << "\" y=\""
          << Y(r.first) - 4 << "\" text-anchor=\"end\" fill=\"#555\" stroke=\"#fff\" stroke-width=\"3\" "
          << "paint-order=\"stroke\">" << r.second << "</text>\n";  // a halo keeps it legible over a curve
    double ly = p.legend_bottom ? h - mb - 12 - 16 * static_cast<double>(p.series.size() - 1) : mt + 16;
    const double lx = p.legend_bottom ? ox + w - mr - 150 : ox + ml + 12;
    for (const Series& s : p.series) {
      out << "<polyline fill=\"none\" stroke=\"" << s.color << "\" stroke-width=\"1.8\"";
      if (!s.dash.empty()) out << " stroke-dasharray=\"" << s.dash << "\"";
      out << " points=\"";
      for (std::size_t i = 0; i < s.x.size(); ++i)
        if (std::isfinite(s.y[i]) && (!p.log_y || s.y[i] > 0)) out << X(s.x[i]) << "," << Y(s.y[i]) << " ";
      out << "\"/>\n";
      if (s.markers)
        for (std::size_t i = 0; i < s.x.size(); ++i)
          if (std::isfinite(s.y[i]) && (!p.log_y || s.y[i] > 0))
            out << "<circle cx=\"" << X(s.x[i]) << "\" cy=\"" << Y(s.y[i]) << "\" r=\"2.5\" fill=\"" << s.color
                << "\"/>\n";
      out << "<line x1=\"" << lx << "\" y1=\"" << ly << "\" x2=\"" << lx + 28 << "\" y2=\"" << ly << "\" stroke=\""
          << s.color << "\" stroke-width=\"1.8\"/><text x=\"" << lx + 34 << "\" y=\"" << ly + 4 << "\">" << s.label
          << "</text>\n";
      ly += 16;
    }
  }
  out << "</svg>\n";
  return out.str();
}
}  // namespace svg

}  // namespace examples
