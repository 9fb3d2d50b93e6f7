// A thin C view of libsentencepiece's C++ API (Debian's libsentencepiece-dev): load a model,
// EncodeAsPieces, piece <-> id. Nothing here reimplements sentencepiece.
#include <sentencepiece_processor.h>

#include <string>
#include <vector>

#include "host/text/tokenizer_internal.h"

struct Spm {
    sentencepiece::SentencePieceProcessor proc;
};

extern "C" Spm *spm_open(const char *path, Error *e) {
    if (!file_exists(path)) {
        errorf(e, "%s: sentencepiece model not found", path);
        return nullptr;
    }
    Spm *s = new Spm();
    auto status = s->proc.Load(path);
    if (!status.ok()) {
        errorf(e, "%s: cannot load sentencepiece model: %s", path, status.ToString().c_str());
        delete s;
        return nullptr;
    }
    return s;
}

extern "C" void spm_free(Spm *s) { delete s; }

extern "C" int spm_size(const Spm *s) { return s->proc.GetPieceSize(); }

extern "C" int spm_piece_to_id(const Spm *s, const char *piece) {
    return s->proc.PieceToId(piece);
}

extern "C" const char *spm_id_to_piece(const Spm *s, int id) {
    return s->proc.IdToPiece(id).c_str();
}

extern "C" int spm_encode_pieces(const Spm *s, const char *text, size_t len, StrList *out,
                                 Error *e) {
    std::vector<std::string> pieces; // local, so one Spm serves several threads
    auto status = s->proc.Encode(absl::string_view(text, len), &pieces);
    if (!status.ok())
        return errorf(e, "sentencepiece encode failed: %s", status.ToString().c_str());
    for (const std::string &p : pieces) strlist_push(out, p.data(), p.size());
    return 0;
}
