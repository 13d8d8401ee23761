#include "lumen/imaging/Deidentify.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <random>
#include <sstream>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "DcmtkSupport.h"
#include "DicomStructureCheck.h"
#include "lumen/core/DurableFile.h"
#include "lumen/imaging/DicomScanner.h"
#include "lumen/core/Sha256.h"

namespace lumen::deid {

namespace fs = std::filesystem;

namespace {

struct ProfileRow {
  Uint16 group, groupMask, element, elementMask;
  const char* name;
  const char* basic;
  // Retain Safe Private, Retain UIDs, Retain Device Identity, Retain Institution Identity,
  // Retain Patient Characteristics, Full Dates, Modified Dates, Clean Descriptors, Clean
  // Structured Content, Clean Graphics.
  const char* options[10];
};

const ProfileRow kProfile[] = {
#include "ConfidentialityProfile.inc"
};

enum OptionColumn { kDevice = 2, kPatientChars = 4, kModifiedDates = 6, kCleanDescriptors = 7 };

// The Retain Safe Private Option's sample list (PS3.15 Table E.3.10-1): (gggg,xxee) of a
// block whose Private Creator is `creator`.
struct SafePrivateRow {
  Uint16 group;
  Uint8 element;
  const char* creator;
  const char* vr;
};

const SafePrivateRow kSafePrivate[] = {
#include "SafePrivate.inc"
};

const ProfileRow* ruleFor(const DcmTagKey& t) {
  const ProfileRow* wildcard = nullptr;
  for (const auto& r : kProfile) {
    if ((t.getGroup() & r.groupMask) != r.group || (t.getElement() & r.elementMask) != r.element) continue;
    if (r.groupMask == 0xFFFF && r.elementMask == 0xFFFF) return &r;
    wildcard = &r;
  }
  return wildcard;
}

// The action for an attribute: the Basic Profile's, changed by the options chosen.
enum class Action { Remove, Empty, Dummy, Uid, Keep, Clean, ShiftDate, Recurse, DummyItems };

Action actionFor(const ProfileRow& r, const Options& o, bool isSequence) {
  std::string a = r.basic;
  bool keep = false, clean = false, dates = false;
  auto opt = [&](int column, bool on) {
    if (!on) return;
    const std::string v = r.options[column];
    if (v == "K") keep = true;
    if (v == "C") {
      clean = true;
      dates = dates || column == kModifiedDates;
    }
  };
  opt(kDevice, o.retainDeviceIdentity);
  opt(kPatientChars, o.retainPatientCharacteristics);
  opt(kModifiedDates, o.retainLongitudinalModifiedDates);
  opt(kCleanDescriptors, o.cleanDescriptors);
  // A real date kept beside shifted ones (a calibration date under Retain Device
  // Identity) would give the offset away: the dates option's shift wins over a keep.
  if (dates && !isSequence) return Action::ShiftDate;
  if (keep) return isSequence ? Action::Recurse : Action::Keep;
  if (clean) return isSequence ? Action::Recurse : dates ? Action::ShiftDate : Action::Clean;
  // Combined actions, without the IOD at hand: keep the attribute present when the
  // standard allows it (an empty type 2, a dummy type 1), so the object stays valid.
  if (a == "X") return Action::Remove;
  // A sequence without items is valid only where it is type 2: X/Z removes a sequence.
  if (a == "Z") return Action::Empty;
  if (a == "X/Z") return isSequence ? Action::Remove : Action::Empty;
  // A dummy sequence: its items kept with dummy values (DummyItems).
  if (a == "D" || a == "X/D" || a == "Z/D" || a == "X/Z/D") return isSequence ? Action::DummyItems : Action::Dummy;
  if (a == "U" || a == "X/Z/U*") return isSequence ? Action::Recurse : Action::Uid;
  return Action::Remove;  // anything unforeseen: the safe side
}

std::string hex(const std::array<std::uint8_t, 32>& d, std::size_t n) {
  std::string s;
  char b[3];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02X", d[i]);
    s += b;
  }
  return s;
}

// Days since 1970-01-01 of a civil date and back (proleptic Gregorian; H. Hinnant's algorithm).
long daysFromCivil(long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long>(doe) - 719468;
}
void civilFromDays(long z, long& y, unsigned& m, unsigned& d) {
  z += 719468;
  const long era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<long>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp + (mp < 10 ? 3 : -9);
  y += m <= 2;
}

// "YYYYMMDD..." moved back by `days`; "" when it is not a date.
std::string shiftDate(const std::string& v, long days) {
  if (v.size() < 8 || !std::all_of(v.begin(), v.begin() + 8, [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return {};
  const long y = std::stol(v.substr(0, 4));
  const unsigned m = static_cast<unsigned>(std::stoul(v.substr(4, 2))), d = static_cast<unsigned>(std::stoul(v.substr(6, 2)));
  if (m < 1 || m > 12 || d < 1 || d > 31) return {};
  long ny;
  unsigned nm, nd;
  civilFromDays(daysFromCivil(y, m, d) - days, ny, nm, nd);
  if (ny < 1 || ny > 9999) return {};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04ld%02u%02u", ny, nm, nd);
  return buf + v.substr(8);
}

// A private block's declaration in Private Data Element Characteristics Sequence
// (0008,0300), keyed by group and creator.
struct DeclaredBlock {
  std::string status;  // SAFE, UNSAFE or MIXED
  std::set<Uint16> safe;  // Nonidentifying Private Elements (the low byte of the element)
  std::map<Uint16, std::string> actions;  // element -> Deidentification Action (X, Z, D, U)
};
using Declarations = std::map<std::pair<Uint16, std::string>, DeclaredBlock>;

struct Context {
  const Key& key;
  const Options& options;
  long shiftDays = 0;
  std::vector<std::string> identifiers;  // words a cleaned text must not keep
  FileReport report;
  /// Inside a sequence the profile replaces with a dummy (D): the values the table does
  /// not name get dummies too (text, names, dates), UIDs keyed hashes; numbers stay.
  int dummyDepth = 0;
  /// With Retain Safe Private: the instance's declarations of its private blocks, and what
  /// happens to each private attribute of the item being processed (absent: removed).
  Declarations declared;
  std::map<DcmTagKey, Action> privateActions;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A description with the patient's and institution's identifiers, and long digit runs
// (record numbers), replaced by X.
std::string cleanText(std::string v, const Context& ctx) {
  std::string low = lower(v);
  for (const auto& id : ctx.identifiers) {
    if (id.size() < 2) continue;
    const std::string needle = lower(id);
    for (std::size_t p = low.find(needle); p != std::string::npos; p = low.find(needle, p + needle.size())) {
      std::fill(v.begin() + static_cast<std::ptrdiff_t>(p), v.begin() + static_cast<std::ptrdiff_t>(p + needle.size()), 'X');
      std::fill(low.begin() + static_cast<std::ptrdiff_t>(p), low.begin() + static_cast<std::ptrdiff_t>(p + needle.size()), 'x');
    }
  }
  // Long digit runs (record numbers, compact dates), and dates and phone numbers written
  // with separators: digit groups joined by / . - : or spaces, 6 digits or more in all.
  for (std::size_t i = 0; i < v.size();) {
    if (!std::isdigit(static_cast<unsigned char>(v[i]))) {
      ++i;
      continue;
    }
    std::size_t j = i, digits = 0, end = i;
    while (j < v.size()) {
      if (std::isdigit(static_cast<unsigned char>(v[j]))) {
        ++digits;
        end = ++j;
      } else if ((v[j] == '/' || v[j] == '.' || v[j] == '-' || v[j] == ':' || v[j] == ' ') && j + 1 < v.size() &&
                 std::isdigit(static_cast<unsigned char>(v[j + 1]))) {
        ++j;
      } else {
        break;
      }
    }
    if (digits >= 6) std::fill(v.begin() + static_cast<std::ptrdiff_t>(i), v.begin() + static_cast<std::ptrdiff_t>(end), 'X');
    i = end > i ? end : i + 1;
  }
  return v;
}

bool isStringVr(DcmEVR vr) {
  switch (vr) {
    case EVR_AE: case EVR_AS: case EVR_CS: case EVR_DA: case EVR_DS: case EVR_DT: case EVR_IS: case EVR_LO:
    case EVR_LT: case EVR_PN: case EVR_SH: case EVR_ST: case EVR_TM: case EVR_UC: case EVR_UI: case EVR_UR:
    case EVR_UT: return true;
    default: return false;
  }
}

// A dummy value of the attribute's VR (D): carries no information, keeps a type 1 present.
void putDummy(DcmElement* e) {
  const DcmEVR vr = e->ident();
  const char* v = nullptr;
  switch (vr) {
    case EVR_DA: v = "19000101"; break;
    case EVR_TM: v = "000000"; break;
    case EVR_DT: v = "19000101000000"; break;
    case EVR_AS: v = "000Y"; break;
    case EVR_DS: case EVR_IS: v = "0"; break;
    case EVR_CS: v = "ANONYMIZED"; break;
    case EVR_AE: v = "ANONYMIZED"; break;
    case EVR_PN: v = "ANONYMIZED"; break;
    case EVR_UR: v = ""; break;
    default: break;
  }
  if (v) {
    e->putString(v);
    return;
  }
  if (isStringVr(vr)) {
    e->putString("ANONYMIZED");
    return;
  }
  switch (vr) {
    case EVR_US: e->putUint16(0); break;
    case EVR_SS: e->putSint16(0); break;
    case EVR_UL: e->putUint32(0); break;
    case EVR_SL: e->putSint32(0); break;
    case EVR_FL: e->putFloat32(0); break;
    case EVR_FD: e->putFloat64(0); break;
    default: e->clear(); break;  // binary: empty
  }
}

// UIDs that name a kind of thing (a SOP class, a coding scheme), not an instance: kept.
bool isClassOrSchemeUid(const DcmTagKey& t) {
  DcmTag tag(t);  // getTagName points into it: it must outlive the copy below
  const char* name = tag.getTagName();
  const std::string n = name ? name : "";
  return n.find("ClassUID") != std::string::npos || n.find("SchemeUID") != std::string::npos ||
         n.find("ContextUID") != std::string::npos || n.find("ResourceUID") != std::string::npos ||
         n == "TransferSyntaxUID" || n == "ImplementationClassUID";
}

void processItem(DcmItem* item, Context& ctx, bool topLevel);
void applyAction(DcmElement* e, Action a, Context& ctx, std::vector<DcmTagKey>& remove);

std::string trimmed(std::string v) {
  while (!v.empty() && (v.back() == ' ' || v.back() == '\0')) v.pop_back();
  std::size_t b = 0;
  while (b < v.size() && v[b] == ' ') ++b;
  return v.substr(b);
}

Declarations declarationsOf(DcmItem* dataset) {
  Declarations declared;
  DcmSequenceOfItems* seq = nullptr;
  if (dataset->findAndGetSequence(DCM_PrivateDataElementCharacteristicsSequence, seq).bad() || !seq) return declared;
  for (unsigned long i = 0; i < seq->card(); ++i) {
    DcmItem* d = seq->getItem(i);
    Uint16 group = 0;
    OFString creator, status;
    if (d->findAndGetUint16(DCM_PrivateGroupReference, group).bad() ||
        d->findAndGetOFString(DCM_PrivateCreatorReference, creator).bad())
      continue;
    DeclaredBlock& out = declared[{group, trimmed(creator.c_str())}];
    d->findAndGetOFString(DCM_BlockIdentifyingInformationStatus, status);
    out.status = trimmed(status.c_str());
    Uint16 n = 0;
    for (unsigned long k = 0; d->findAndGetUint16(DCM_NonidentifyingPrivateElements, n, k).good(); ++k) out.safe.insert(n);
    DcmSequenceOfItems* acts = nullptr;
    if (d->findAndGetSequence(DCM_DeidentificationActionSequence, acts).good() && acts) {
      for (unsigned long j = 0; j < acts->card(); ++j) {
        OFString action;
        acts->getItem(j)->findAndGetOFString(DCM_DeidentificationAction, action);
        for (unsigned long k = 0; acts->getItem(j)->findAndGetUint16(DCM_IdentifyingPrivateElements, n, k).good(); ++k)
          out.actions[n] = trimmed(action.c_str());
      }
    }
  }
  return declared;
}

// The Retain Safe Private Option (PS3.15 E.3.10): a private attribute is kept when its
// block is declared safe in the instance's Private Data Element Characteristics Sequence
// (status SAFE, or listed in Nonidentifying Private Elements of a MIXED block; an element
// given a Deidentification Action gets that action), or, for blocks not declared there,
// when Table E.3.10-1 lists it. A Private Creator stays when something of its block does.
// Everything else private goes.
std::map<DcmTagKey, Action> safePrivateActions(DcmItem* item, const Declarations& declared) {
  std::map<std::pair<Uint16, Uint16>, std::string> creators;  // (group, block) -> creator
  std::vector<DcmElement*> data;
  for (unsigned long i = 0; i < item->card(); ++i) {
    DcmElement* e = item->getElement(i);
    const DcmTagKey t = e->getTag();
    const Uint16 g = t.getGroup(), el = t.getElement();
    if (!(g & 1) || g < 0x0009 || g == 0xFFFF) continue;
    OFString v;
    if (el >= 0x0010 && el <= 0x00FF && e->getOFStringArray(v).good()) creators[{g, el}] = trimmed(v.c_str());
    else if (el >= 0x1000) data.push_back(e);
  }
  std::map<DcmTagKey, Action> out;
  std::set<std::pair<Uint16, Uint16>> usedBlocks;
  for (DcmElement* e : data) {
    const DcmTagKey t = e->getTag();
    const Uint16 g = t.getGroup(), block = t.getElement() >> 8, offset = t.getElement() & 0xFF;
    const auto c = creators.find({g, block});
    if (c == creators.end() || c->second.empty()) continue;  // no creator: nothing says what it is
    std::optional<Action> a;
    if (const auto d = declared.find({g, c->second}); d != declared.end()) {
      if (d->second.status == "SAFE" || (d->second.status == "MIXED" && d->second.safe.count(offset))) {
        a = Action::Keep;
      } else if (d->second.status == "MIXED") {
        const auto act = d->second.actions.find(offset);
        const std::string code = act == d->second.actions.end() ? "X" : act->second;
        if (code == "Z") a = Action::Empty;
        else if (code == "D") a = Action::Dummy;
        else if (code == "U") a = Action::Uid;
      }
    } else {
      for (const auto& r : kSafePrivate)
        if (r.group == g && r.element == offset && c->second == r.creator) a = Action::Keep;
    }
    if (!a) continue;
    out[t] = *a;
    usedBlocks.insert({g, block});
  }
  for (const auto& [block, creator] : creators)
    if (usedBlocks.count(block)) out[DcmTagKey(block.first, block.second)] = Action::Keep;
  return out;
}

void apply(DcmElement* e, Context& ctx, std::vector<DcmTagKey>& remove, bool topLevel) {
  const DcmTag& t = e->getTag();
  const bool sq = e->ident() == EVR_SQ;
  Action a;
  if (t.getGroup() & 1) {
    // Private attributes and their creators (and groups 1-7): removed, unless the Retain
    // Safe Private Option found them safe.
    const auto found = ctx.privateActions.find(t);
    // A value of unknown type (UN: read without its VR) cannot be judged, whatever the
    // lists say: a UID would escape the hash, a sequence its inside.
    if (found == ctx.privateActions.end() || e->ident() == EVR_UN) {
      remove.push_back(t);
      ++ctx.report.removed;
      return;
    }
    a = found->second;
    if (a == Action::Keep && sq) a = Action::Recurse;  // its items are processed like any other
    if (a == Action::Keep && e->ident() == EVR_UI) a = Action::Uid;  // consistent with the standard UIDs
    // Inside a sequence the profile replaces with a dummy, kept private text gets one too.
    const DcmEVR pvr = e->ident();
    if (a == Action::Keep && ctx.dummyDepth > 0 &&
        ((isStringVr(pvr) && pvr != EVR_DS && pvr != EVR_IS && pvr != EVR_CS) || pvr == EVR_OB || pvr == EVR_OW))
      a = Action::Dummy;
    ++ctx.report.privateKept;
    applyAction(e, a, ctx, remove);
    return;
  }
  // Overlays, and values of unknown type (UN: a whole sequence may hide in one) go whole.
  if ((t.getGroup() & 0xFF00) == 0x6000 || e->ident() == EVR_UN) {
    remove.push_back(t);
    ++ctx.report.removed;
    return;
  }
  if (topLevel && (t == DCM_PatientName || t == DCM_PatientID)) return;  // pseudonyms, set afterwards
  const ProfileRow* rule = ruleFor(t);
  a = rule ? actionFor(*rule, ctx.options, sq) : (sq ? Action::Recurse : Action::Keep);
  const DcmEVR vr = e->ident();
  if (!rule && !sq) {
    // By VR where the table is silent (PS3.15 E.1 Note): instance UIDs, dates.
    if (vr == EVR_UI && !isClassOrSchemeUid(t)) a = Action::Uid;
    else if (vr == EVR_DA || vr == EVR_DT) a = ctx.options.retainLongitudinalModifiedDates ? Action::ShiftDate : Action::Dummy;
    else if (ctx.dummyDepth > 0 && isStringVr(vr) && vr != EVR_DS && vr != EVR_IS && vr != EVR_CS && vr != EVR_UI)
      a = Action::Dummy;
    else if (ctx.dummyDepth > 0 && (vr == EVR_OB || vr == EVR_OW)) a = Action::Dummy;
  }
  applyAction(e, a, ctx, remove);
}

void applyAction(DcmElement* e, Action a, Context& ctx, std::vector<DcmTagKey>& remove) {
  const DcmTag& t = e->getTag();
  const bool sq = e->ident() == EVR_SQ;
  OFString value;
  switch (a) {
    case Action::Remove:
      remove.push_back(t);
      ++ctx.report.removed;
      return;
    case Action::Empty:
      if (sq) static_cast<DcmSequenceOfItems*>(e)->clear();
      else e->clear();
      ++ctx.report.emptied;
      return;
    case Action::Dummy:
      putDummy(e);
      ++ctx.report.dummies;
      return;
    case Action::Uid: {
      if (e->ident() != EVR_UI) {  // a UID attribute of another VR: no value to map
        e->clear();
        ++ctx.report.emptied;
        return;
      }
      OFString all;
      e->getOFStringArray(all);
      std::string out;
      std::stringstream ss(all.c_str());
      for (std::string uid; std::getline(ss, uid, '\\');) {
        if (!out.empty()) out += '\\';
        while (!uid.empty() && (uid.back() == ' ' || uid.back() == '\0')) uid.pop_back();
        // The standard's own UIDs (SOP classes, transfer syntaxes, coding schemes) identify nobody.
        const bool wellKnown = uid.rfind("1.2.840.10008.", 0) == 0;
        out += uid.empty() || wellKnown ? uid : hashedUid(ctx.key, uid);
      }
      e->putString(out.c_str());
      ++ctx.report.uids;
      return;
    }
    case Action::ShiftDate: {
      ++ctx.report.shifted;
      if (e->ident() == EVR_TM) return;  // whole days: the time of day stays
      OFString all;
      e->getOFStringArray(all);
      std::string out;
      std::stringstream ss(all.c_str());
      for (std::string v; std::getline(ss, v, '\\');) {
        if (!out.empty()) out += '\\';
        out += shiftDate(v, ctx.shiftDays);
      }
      e->putString(out.c_str());
      return;
    }
    case Action::Clean:
      if (isStringVr(e->ident()) && e->getOFStringArray(value).good()) {
        e->putString(cleanText(value.c_str(), ctx).c_str());
      } else {
        e->clear();
      }
      ++ctx.report.cleaned;
      return;
    case Action::Keep:
      ++ctx.report.kept;
      return;
    case Action::Recurse:
    case Action::DummyItems: {
      auto* seq = static_cast<DcmSequenceOfItems*>(e);
      if (a == Action::DummyItems) ++ctx.dummyDepth;
      for (unsigned long i = 0; i < seq->card(); ++i) processItem(seq->getItem(i), ctx, false);
      if (a == Action::DummyItems) {
        --ctx.dummyDepth;
        ++ctx.report.dummies;
      }
      return;
    }
  }
}

void processItem(DcmItem* item, Context& ctx, bool topLevel) {
  // Each item's private blocks are its own (a creator names the blocks of its own item).
  auto saved = std::move(ctx.privateActions);
  if (topLevel && ctx.options.retainSafePrivate) ctx.declared = declarationsOf(item);
  ctx.privateActions = ctx.options.retainSafePrivate ? safePrivateActions(item, ctx.declared) : std::map<DcmTagKey, Action>{};
  std::vector<DcmTagKey> remove;
  for (unsigned long i = 0; i < item->card(); ++i) apply(item->getElement(i), ctx, remove, topLevel);
  for (const auto& t : remove) delete item->remove(t);
  ctx.privateActions = std::move(saved);
}

std::string str(DcmItem* item, const DcmTagKey& t) {
  OFString v;
  return item->findAndGetOFStringArray(t, v).good() ? std::string(v.c_str()) : std::string();
}

}  // namespace

bool setOption(Options& o, const std::string& name) {
  if (name == "retain-longitudinal-modified-dates") o.retainLongitudinalModifiedDates = true;
  else if (name == "retain-patient-characteristics") o.retainPatientCharacteristics = true;
  else if (name == "clean-descriptors") o.cleanDescriptors = true;
  else if (name == "retain-device-identity") o.retainDeviceIdentity = true;
  else if (name == "retain-safe-private") o.retainSafePrivate = true;
  else return false;
  return true;
}

std::vector<std::string> optionNames() {
  return {"retain-longitudinal-modified-dates", "retain-patient-characteristics", "clean-descriptors",
          "retain-device-identity", "retain-safe-private"};
}

std::size_t profileAttributeCount() { return sizeof(kProfile) / sizeof(kProfile[0]); }

Result<Key> Key::load(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorCode::NotFound, "cannot read the key file (create one with --make-key)", path.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == '\r')) bytes.pop_back();
  if (bytes.size() < 32) return Error(ErrorCode::InvalidArgument, "a key needs at least 32 bytes", path.string());
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077))
    return Error(ErrorCode::InvalidArgument, "the key file is readable by others: chmod 600 it", path.string());
  return Key{bytes};
}

Status Key::create(const fs::path& path) {
  std::random_device rd;
  std::string hexKey;
  char b[3];
  for (int i = 0; i < 32; ++i) {
    std::snprintf(b, sizeof b, "%02x", static_cast<unsigned>(rd() & 0xFF));
    hexKey += b;
  }
  hexKey += "\n";
  // O_EXCL: an existing key (or one another process creates meanwhile) is never replaced.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return Error(ErrorCode::InvalidArgument,
                 errno == EEXIST ? "a file is already there; a key is never overwritten" : std::string(std::strerror(errno)),
                 path.string());
  const bool ok = ::write(fd, hexKey.data(), hexKey.size()) == static_cast<ssize_t>(hexKey.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    std::error_code ec;
    fs::remove(path, ec);
    return Error(ErrorCode::Io, "cannot write the key file", path.string());
  }
  return syncFolder(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

std::string hashedUid(const Key& key, const std::string& uid) { return Sha256::uidOf(Sha256::hmac(key.bytes, "uid:" + uid)); }

Result<FileReport> deidentifyFile(const fs::path& input, const fs::path& outDir, const Key& key, const Options& options) {
  const std::string path = input.string();
  if (auto why = dicom::checkDicomStructure(path); !why.empty()) return Error(ErrorCode::Corrupt, why, path);
  DcmFileFormat ff;
  try {
    const OFCondition c = ff.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
    if (c.bad()) return Error(ErrorCode::NotDicom, std::string("cannot parse DICOM (") + c.text() + ")", path);
    ff.loadAllDataIntoMemory();
  } catch (const std::exception& e) {
    return Error(ErrorCode::Corrupt, std::string("cannot parse DICOM (") + e.what() + ")", path);
  }
  DcmDataset* ds = ff.getDataset();
  const std::string sopClass = str(ds, DCM_SOPClassUID), sop = str(ds, DCM_SOPInstanceUID);
  const std::string study = str(ds, DCM_StudyInstanceUID), series = str(ds, DCM_SeriesInstanceUID);
  if (sop.empty() || study.empty() || series.empty())
    return Error(ErrorCode::Unsupported, "not a composite instance (no SOP, study or series UID)", path);
  if (!options.allowBurnedIn) {
    const std::string modality = str(ds, DCM_Modality);
    if (str(ds, DCM_BurnedInAnnotation) == "YES")
      return Error(ErrorCode::Unsupported, "refused: flagged as having burned-in annotation (override: --allow-burned-in)", path);
    if (str(ds, DCM_RecognizableVisualFeatures) == "YES")
      return Error(ErrorCode::Unsupported, "refused: flagged as having recognizable visual features (override: --allow-burned-in)", path);
    const std::string sc = "1.2.840.10008.5.1.4.1.1.7";  // secondary capture and its multi-frame kinds
    if (modality == "US" || modality == "SC" || modality == "XC" || sopClass == sc || sopClass.rfind(sc + ".", 0) == 0)
      return Error(ErrorCode::Unsupported,
                   "refused: " + (modality.empty() ? std::string("secondary capture") : modality) +
                       " images often have text burned into the pixels (check them, then --allow-burned-in)",
                   path);
  }
  Context ctx{key, options, 0, {}, {}, 0, {}, {}};
  // Who the patient is for pseudonym and date shift: issuer and ID. Without an ID the
  // study stands for the patient (patients without IDs must not merge into one).
  const std::string patientId = str(ds, DCM_PatientID);
  const std::string who = patientId.empty() ? "study:" + study : "patient:" + str(ds, DCM_IssuerOfPatientID) + "|" + patientId;
  if (patientId.empty()) ctx.report.note = "no patient ID: pseudonym and date shift per study";
  const auto shift = Sha256::hmac(key.bytes, "date-shift:" + who);
  ctx.shiftDays = 1 + static_cast<long>((static_cast<unsigned>(shift[0]) << 8 | shift[1]) % 3650);
  // What a cleaned description must not keep: the patient's and the site's identifiers.
  for (const DcmTagKey& t : {DCM_PatientName, DCM_OtherPatientNames, DCM_ReferringPhysicianName, DCM_PerformingPhysicianName,
                             DCM_OperatorsName, DCM_PatientMotherBirthName, DCM_PatientBirthName}) {
    std::string v = str(ds, t);
    for (char& c : v)
      if (c == '^' || c == '\\' || c == '=' || c == ',') c = ' ';
    std::stringstream ss(v);
    for (std::string w; ss >> w;) ctx.identifiers.push_back(w);
  }
  for (const DcmTagKey& t : {DCM_PatientID, DCM_AccessionNumber, DCM_InstitutionName, DCM_InstitutionAddress,
                             DCM_PatientBirthDate, DCM_StationName, DCM_StudyID, DCM_IssuerOfPatientID})
    if (auto v = str(ds, t); !v.empty()) ctx.identifiers.push_back(v);

  processItem(ds, ctx, true);

  // Pseudonyms: the same patient gets the same ones in every run with this key.
  const auto p = Sha256::hmac(key.bytes, "pseudonym:" + who);
  ds->putAndInsertString(DCM_PatientName, ("ANONYMIZED^" + hex(p, 4)).c_str());
  ds->putAndInsertString(DCM_PatientID, ("LUMEN-" + hex(p, 8)).c_str());
  ds->putAndInsertString(DCM_PatientIdentityRemoved, "YES");
  ds->putAndInsertString(DCM_LongitudinalTemporalInformationModified,
                         options.retainLongitudinalModifiedDates ? "MODIFIED" : "REMOVED");
  // Added to what an earlier de-identification recorded, never replacing it.
  {
    OFString earlier;
    const std::string method = "Lumen: PS3.15 E.1-1 Basic Profile, keyed-hash UIDs";
    if (ds->findAndGetOFStringArray(DCM_DeidentificationMethod, earlier).good() && !earlier.empty())
      ds->putAndInsertString(DCM_DeidentificationMethod, (std::string(earlier.c_str()) + "\\" + method).c_str());
    else
      ds->putAndInsertString(DCM_DeidentificationMethod, method.c_str());
  }
  // CID 7050 De-identification Method: the profile and each option applied.
  std::vector<std::pair<const char*, const char*>> codes = {{"113100", "Basic Application Confidentiality Profile"}};
  if (options.retainLongitudinalModifiedDates) codes.push_back({"113107", "Retain Longitudinal Temporal Information Modified Dates Option"});
  if (options.retainPatientCharacteristics) codes.push_back({"113108", "Retain Patient Characteristics Option"});
  if (options.retainDeviceIdentity) codes.push_back({"113109", "Retain Device Identity Option"});
  if (options.retainSafePrivate) codes.push_back({"113111", "Retain Safe Private Option"});
  if (options.cleanDescriptors) codes.push_back({"113105", "Clean Descriptors Option"});
  for (std::size_t i = 0; i < codes.size(); ++i) {
    bool present = false;
    DcmItem* existing = nullptr;
    for (long k = 0; ds->findAndGetSequenceItem(DCM_DeidentificationMethodCodeSequence, existing, k).good() && existing; ++k)
      present = present || str(existing, DCM_CodeValue) == codes[i].first;
    if (present) continue;
    DcmItem* item = nullptr;
    if (ds->findOrCreateSequenceItem(DCM_DeidentificationMethodCodeSequence, item, -2).bad() || !item)
      return Error(ErrorCode::Internal, "cannot write the de-identification method codes", path);
    item->putAndInsertString(DCM_CodeValue, codes[i].first);
    item->putAndInsertString(DCM_CodingSchemeDesignator, "DCM");
    item->putAndInsertString(DCM_CodeMeaning, codes[i].second);
  }

  // A new file around the data set: new meta information (this implementation's, none of
  // the sender's AE titles or private data) and a zero preamble (a TIFF or vendor preamble
  // could carry anything).
  const std::string newSop = str(ds, DCM_SOPInstanceUID);
  const E_TransferSyntax xfer = ds->getOriginalXfer() == EXS_Unknown ? EXS_LittleEndianExplicit : ds->getOriginalXfer();
  DcmFileFormat fresh(ds);

  FileReport report = ctx.report;
  report.sopClassUid = sopClass;
  report.output = fs::path(str(ds, DCM_StudyInstanceUID)) / str(ds, DCM_SeriesInstanceUID) / (newSop + ".dcm");
  const fs::path dest = outDir / report.output;
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return Error(ErrorCode::Io, "cannot create the output folder: " + ec.message(), dest.parent_path().string());
  const fs::path tmp = temporaryPathFor(dest);
  const OFCondition w = fresh.saveFile(tmp.c_str(), xfer, EET_ExplicitLength, EGL_recalcGL, EPD_noChange, 0, 0, EWM_createNewMeta);
  if (w.bad()) {
    fs::remove(tmp, ec);
    return Error(ErrorCode::Io, std::string("cannot write: ") + w.text(), dest.string());
  }
  if (auto st = commitFile(tmp, dest, FolderSync::Now); !st) return st.error();
  // The study and series folders may be new: their entries must be on disk too.
  for (const fs::path& dir : {dest.parent_path().parent_path(), outDir})
    if (auto st = syncFolder(dir); !st) return st.error();
  return report;
}

Result<BatchReport> deidentifyInputs(const std::vector<fs::path>& inputs, const fs::path& outDir, const Key& key,
                                     const Options& options, const Progress& progress, const CancelToken& cancel) {
  BatchReport report;
  std::vector<dicom::SkippedFile> skipped;
  std::vector<std::string> notes;
  std::error_code ec;
  fs::create_directories(outDir, ec);
  if (ec) return Error(ErrorCode::Io, "cannot create the output folder: " + ec.message(), outDir.string());
  // Earlier output inside an input folder is not input again (it would be hashed twice).
  const fs::path outCanonical = fs::weakly_canonical(outDir, ec);
  std::vector<fs::path> files;
  progress.unknown("Listing files");
  for (auto& f : dicom::enumerateInputs(inputs, skipped, notes)) {
    const auto rel = fs::weakly_canonical(f, ec).lexically_relative(outCanonical);
    if (!rel.empty() && *rel.begin() != "..") continue;
    files.push_back(std::move(f));
  }
  for (const auto& s : skipped) report.problems.push_back(s.path + ": " + s.reason);
  report.failed = skipped.size();
  std::map<fs::path, std::size_t> written;  // output -> input number: two inputs, one instance
  std::string log = "input\toutput\tsop_class\tremoved\temptied\tdummies\tuids\tcleaned\tdates_shifted\tkept\tprivate_kept\tstatus\n";
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (cancel.isCancelled()) return Error(ErrorCode::Cancelled, "de-identification cancelled");
    progress.report(static_cast<double>(i) / static_cast<double>(files.size()), "De-identifying");
    auto r = deidentifyFile(files[i], outDir, key, options);
    const std::string n = "#" + std::to_string(i + 1);
    if (!r) {
      const bool refusal = r.error().message.rfind("refused", 0) == 0;
      (refusal ? report.refused : report.failed)++;
      report.problems.push_back(r.error().toString());
      // The reason without the path: the log is shared with the data.
      log += n + "\t\t\t\t\t\t\t\t\t\t\t" + (refusal ? "" : "error: ") + r.error().message + "\n";
      continue;
    }
    if (auto [it, fresh] = written.emplace(r->output, i + 1); !fresh) {
      ++report.failed;
      report.problems.push_back(files[i].string() + ": the same instance (SOP Instance UID) as input #" +
                                std::to_string(it->second) + "; this copy replaced it");
      log += n + "\t" + r->output.string() + "\t\t\t\t\t\t\t\t\t\terror: the same instance as #" + std::to_string(it->second) + "\n";
      continue;
    }
    ++report.deidentified;
    log += n + "\t" + r->output.string() + "\t" + r->sopClassUid + "\t" + std::to_string(r->removed) + "\t" +
           std::to_string(r->emptied) + "\t" + std::to_string(r->dummies) + "\t" + std::to_string(r->uids) + "\t" +
           std::to_string(r->cleaned) + "\t" + std::to_string(r->shifted) + "\t" + std::to_string(r->kept) + "\t" +
           std::to_string(r->privateKept) + "\tok" +
           (r->note.empty() ? "" : " (" + r->note + ")") + "\n";
  }
  report.log = outDir / "deidentification-log.tsv";
  if (auto st = writeFileDurably(report.log, log); !st) return st.error();
  progress.report(1.0, "De-identified");
  return report;
}

}  // namespace lumen::deid
