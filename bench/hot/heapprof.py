# A heap profiler for MicroPython (scratch tool, not a test): builds the unix port from the firmware's source
# (build/firmware/src/micropython) with three small patches, so that `micropython.prof(1)` makes the VM print, on
# stderr, every heap request with the bytecode function that made it and that function's caller:
#   F <function><<caller> <bytes>   a frame taken from the heap (more than 11 words of locals and stack)
#   A <function><<caller> <bytes>   any other request (objects, lists growing, bytes, dict tables ...)
# bench/mp_heap.py --prof uses it to say where each command's bytes go.
# usage: .venv/bin/python bench/hot/heapprof.py [DIR]     builds into DIR (default /tmp/microredis_heapprof_<uid>)
#        and prints the paths of its micropython and mpy-cross; a second run reuses the build.
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(REPO, "build", "firmware", "src", "micropython")

PATCHES = {
    "py/objfun.c": [
        ("static mp_obj_t fun_bc_call(mp_obj_t self_in, size_t n_args, size_t n_kw, const mp_obj_t *args) {\n"
         "    mp_cstack_check();\n",
         "int mpprof_on = 0;\nint mpprof_depth = 0;\nconst char *mpprof_stack[512];\n"
         "static mp_obj_t fun_bc_call(mp_obj_t self_in, size_t n_args, size_t n_kw, const mp_obj_t *args) {\n"
         "    mp_cstack_check();\n"
         "    int mpprof_saved = mpprof_depth;\n"
         "    if (mpprof_depth < 512) { mpprof_stack[mpprof_depth] = qstr_str(mp_obj_fun_get_name(self_in)); }\n"
         "    mpprof_depth++;\n"),
        ("    if (state_size > VM_MAX_STATE_ON_STACK) {\n"
         "        code_state = m_new_obj_var_maybe(mp_code_state_t, state, byte, state_size);\n",
         "    if (state_size > VM_MAX_STATE_ON_STACK) {\n"
         "        int mpprof_was = mpprof_on;\n"
         "        if (mpprof_on && mpprof_saved < 512) { mpprof_on = 0; fprintf(stderr, \"F %s<%s %u\\n\", "
         "mpprof_stack[mpprof_saved], mpprof_saved > 0 ? mpprof_stack[mpprof_saved - 1] : \"?\", "
         "(unsigned)(offsetof(mp_code_state_t, state) + state_size)); }\n"
         "        code_state = m_new_obj_var_maybe(mp_code_state_t, state, byte, state_size);\n"
         "        mpprof_on = mpprof_was;\n"),
        ("    mp_vm_return_kind_t vm_return_kind = mp_execute_bytecode(code_state, MP_OBJ_NULL);\n"
         "    mp_globals_set(code_state->old_globals);\n",
         "    mp_vm_return_kind_t vm_return_kind = mp_execute_bytecode(code_state, MP_OBJ_NULL);\n"
         "    mp_globals_set(code_state->old_globals);\n"
         "    mpprof_depth = mpprof_saved;\n"),
    ],
    "py/gc.c": [
        ("void *gc_alloc(size_t n_bytes, unsigned int alloc_flags) {\n",
         "extern int mpprof_on; extern int mpprof_depth; extern const char *mpprof_stack[];\n"
         "void *gc_alloc(size_t n_bytes, unsigned int alloc_flags) {\n"
         "    if (mpprof_on) { mpprof_on = 0; fprintf(stderr, \"A %s<%s %u\\n\", mpprof_depth > 0 && "
         "mpprof_depth <= 512 ? mpprof_stack[mpprof_depth - 1] : \"?\", mpprof_depth > 1 && mpprof_depth <= 512 ? "
         "mpprof_stack[mpprof_depth - 2] : \"?\", (unsigned)n_bytes); mpprof_on = 1; }\n"),
    ],
    "py/modmicropython.c": [
        ("static MP_DEFINE_CONST_FUN_OBJ_0(mp_micropython_mem_total_obj, mp_micropython_mem_total);\n",
         "static MP_DEFINE_CONST_FUN_OBJ_0(mp_micropython_mem_total_obj, mp_micropython_mem_total);\n"
         "extern int mpprof_on;\n"
         "static mp_obj_t mp_micropython_prof(mp_obj_t x) { mpprof_on = mp_obj_is_true(x); return mp_const_none; }\n"
         "static MP_DEFINE_CONST_FUN_OBJ_1(mp_micropython_prof_obj, mp_micropython_prof);\n"),
        ("    { MP_ROM_QSTR(MP_QSTR_mem_total), MP_ROM_PTR(&mp_micropython_mem_total_obj) },\n",
         "    { MP_ROM_QSTR(MP_QSTR_mem_total), MP_ROM_PTR(&mp_micropython_mem_total_obj) },\n"
         "    { MP_ROM_QSTR(MP_QSTR_prof), MP_ROM_PTR(&mp_micropython_prof_obj) },\n"),
    ],
}


def build(dest=None):
    """(micropython, mpy-cross) of the profiling build in dest, made if missing."""
    dest = dest or "/tmp/microredis_heapprof_%d" % os.getuid()
    mp = os.path.join(dest, "ports", "unix", "build-standard", "micropython")
    mpyc = os.path.join(dest, "mpy-cross", "build", "mpy-cross")
    if os.path.exists(mp) and os.path.exists(mpyc):
        return mp, mpyc
    if not os.path.exists(os.path.join(SRC, "py", "objfun.c")):
        raise SystemExit("no MicroPython source in %s (FIRMWARE_SOURCE_ONLY=1 bash firmware/build.sh)" % SRC)
    skip = {os.path.join("ports", p) for p in os.listdir(os.path.join(SRC, "ports")) if p != "unix"}
    if os.path.exists(dest):
        shutil.rmtree(dest)

    def ignore(d, names):
        rel = os.path.relpath(d, SRC)
        return [n for n in names if os.path.normpath(os.path.join(rel, n)) in skip or
                (rel == os.path.join("ports", "unix") and n.startswith("build-")) or
                (rel == "mpy-cross" and n == "build")]
    shutil.copytree(SRC, dest, symlinks=True, ignore=ignore)
    for f, edits in PATCHES.items():
        p = os.path.join(dest, f)
        with open(p) as fh:
            s = fh.read()
        for old, new in edits:
            if s.count(old) != 1:
                raise SystemExit("%s: the text to patch is not there once (another MicroPython version?)" % f)
            s = s.replace(old, new)
        if "#include <stdio.h>" not in s:
            s = "#include <stdio.h>\n" + s
        with open(p, "w") as fh:
            fh.write(s)
    jobs = "-j%d" % min(2, os.cpu_count() or 1)
    subprocess.check_call(["make", "-C", os.path.join(dest, "mpy-cross"), jobs], stdout=subprocess.DEVNULL)
    subprocess.check_call(["make", "-C", os.path.join(dest, "ports", "unix"), jobs, "VARIANT=standard",
                           "MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0", "MICROPY_SSL_AXTLS=0", "MICROPY_PY_SSL=0",
                           "FROZEN_MANIFEST=" + os.path.join(REPO, "firmware", "manifest_stock.py")],
                          stdout=subprocess.DEVNULL)
    return mp, mpyc


def report(lines, n, top=12):
    """The heap requests of lines (F/A lines as above), summed per function and caller, per op of n."""
    agg = {}
    for line in lines:
        p = line.split()
        if len(p) != 3 or p[0] not in ("F", "A"):
            continue
        k = (p[0], p[1])
        b, c = agg.get(k, (0, 0))
        agg[k] = (b + int(p[2]), c + 1)
    out = []
    for (kind, where), (b, c) in sorted(agg.items(), key=lambda x: -x[1][0])[:top]:
        out.append("    %s %-38s %6d B  %5.1f x" % ("frame" if kind == "F" else "alloc", where, b // n, c / n))
    return out


if __name__ == "__main__":
    print("\n".join(build(sys.argv[1] if len(sys.argv) > 1 else None)))
