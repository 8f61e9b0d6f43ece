// Convention for errors across cpiscope modules: each module has one error enum whose
// `description` is a single line naming the file, tensor or field at fault, and whose
// `hint` suggests a fix. The CLI prints both and exits non-zero.
