#!/usr/bin/env bash
# Installs the `orchestrator` command for this user, then says which agent CLIs are missing.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: install.sh [--binary PATH | --wheel PATH] [--bin-dir DIR] [--force]
       install.sh --uninstall

Installs the `orchestrator` command into ~/.local/bin (or DIR):
  * the standalone executable dist/orchestrator beside this script (scripts/build-binary
    makes it), or the one given with --binary: copied, no Python needed;
  * else the Python package as a uv tool (its own venv, managed by uv): the wheel given
    with --wheel, or this checkout.
Running it again changes nothing when the same thing is installed; a different build or
version replaces it. Afterwards it checks for the agent CLIs (claude, codex, gemini) and
says how to install the missing ones (the `demo` agent needs none of them).

options:
  --binary PATH   install this executable
  --wheel PATH    install this wheel with `uv tool install`
  --bin-dir DIR   where the command goes (env ORCHESTRATOR_BIN_DIR; default ~/.local/bin)
  --force         install even when the same version is installed already
  --uninstall     remove what install.sh installed (recorded in
                  ${XDG_STATE_HOME:-~/.local/state}/agent-orchestrator/installed)
  -h, --help      this text
EOF
}

die() {
  echo "error: $*" >&2
  exit 1
}

here=$(CDPATH='' cd -- "$(dirname "$0")" && pwd)
bin_dir=${ORCHESTRATOR_BIN_DIR:-$HOME/.local/bin}
binary=""
wheel=""
force=0
action=install
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --wheel) wheel=${2:?--wheel needs a path}; shift 2 ;;
    --bin-dir) bin_dir=${2:?--bin-dir needs a folder}; shift 2 ;;
    --force) force=1; shift ;;
    --uninstall) action=uninstall; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ -z "$binary" ] || [ -z "$wheel" ] || die "give --binary or --wheel, not both"
# absolute, so that what is recorded is the same wherever --uninstall runs from
mkdir -p "$bin_dir"
bin_dir=$(CDPATH='' cd -- "$bin_dir" && pwd)

PACKAGE=agent-orchestrator
state_dir=${XDG_STATE_HOME:-$HOME/.local/state}/agent-orchestrator
manifest=$state_dir/installed # lines "binary<TAB>PATH" or "uv-tool<TAB>PATH"
source_file=$state_dir/uv-tool-source # what the uv tool was built from (see source_id)
TAB=$(printf '\t')

# --- the record of what was installed --------------------------------------------------

recorded() { # recorded KIND: the paths installed as KIND, one a line
  [ -f "$manifest" ] || return 0
  while IFS=$TAB read -r kind path; do
    if [ "$kind" = "$1" ]; then echo "$path"; fi
  done <"$manifest"
}

forget() { # forget PATH: drop its entry
  [ -f "$manifest" ] || return 0
  grep -v -F -x -e "binary$TAB$1" -e "uv-tool$TAB$1" "$manifest" >"$manifest.tmp" || true
  if [ -s "$manifest.tmp" ]; then
    mv -f "$manifest.tmp" "$manifest"
  else
    rm -f "$manifest.tmp" "$manifest"
  fi
}

record() { # record KIND PATH: PATH is now KIND
  forget "$2"
  mkdir -p "$state_dir"
  printf '%s\t%s\n' "$1" "$2" >>"$manifest"
}

# --- uv tool ---------------------------------------------------------------------------

need_uv() {
  command -v uv >/dev/null 2>&1 && return 0
  die "uv not found: install it (https://docs.astral.sh/uv/getting-started/installation/)," \
    "or build the standalone executable (scripts/build-binary) and run install.sh again"
}

tool_version() { # the version of the installed uv tool, or nothing
  command -v uv >/dev/null 2>&1 || return 0
  uv tool list 2>/dev/null | awk -v p="$PACKAGE" '$1 == p { sub(/^v/, "", $2); print $2; exit }'
}

uninstall_tool() { # uninstall_tool PATH
  rm -f "$source_file"
  if ! command -v uv >/dev/null 2>&1; then
    echo "warning: uv is not on PATH any more: the uv tool $PACKAGE ($1) cannot be removed" \
      "here; \`uv tool uninstall $PACKAGE\` removes it once uv is back" >&2
  elif [ -n "$(tool_version)" ]; then
    uv tool uninstall --quiet "$PACKAGE"
    echo "removed the uv tool $PACKAGE ($1)"
  else
    echo "the uv tool $PACKAGE is gone already ($1)"
  fi
  forget "$1"
}

# --- install ---------------------------------------------------------------------------

install_binary() { # install_binary SOURCE
  local source=$1 target=$bin_dir/orchestrator path
  # (a downloaded file has no execute bit: the copy gets one)
  if [ ! -f "$source" ]; then die "$source is not a file (a --onedir build is a folder:" \
    "install.sh takes one-file builds)"; fi
  mkdir -p "$bin_dir"
  # (fd 3: uv must not read the list as its stdin)
  while IFS= read -r path <&3; do uninstall_tool "$path"; done 3< <(recorded uv-tool)
  if [ -f "$target" ] && [ ! -L "$target" ] && cmp -s "$source" "$target" && [ $force -eq 0 ]; then
    record binary "$target"
    echo "already installed, unchanged: $target ($("$target" version))"
    return
  fi
  local said=installed
  if [ -e "$target" ] || [ -L "$target" ]; then said=replaced; fi
  # A copy beside the target, then a rename: a running orchestrator keeps its old file,
  # and a symlink at the target is replaced, not written through.
  cp "$source" "$target.new.$$"
  chmod 755 "$target.new.$$"
  if ! "$target.new.$$" version >/dev/null; then # another OS or CPU, an older libc, ...
    rm -f "$target.new.$$"
    die "$source does not run on this machine (above: why); nothing was installed"
  fi
  mv -f "$target.new.$$" "$target"
  record binary "$target"
  echo "$said $target ($("$target" version), the standalone executable)"
}

digest() { # digest: the sha256 of stdin
  if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi | cut -c1-64
}

source_id() { # source_id SOURCE: a wheel's digest; a checkout's commit and local changes
  if [ -f "$1" ]; then
    digest <"$1"
  elif git -C "$1" rev-parse --verify --quiet HEAD >/dev/null 2>&1; then
    { git -C "$1" rev-parse HEAD; git -C "$1" status --porcelain; git -C "$1" diff HEAD; } | digest
  else
    echo "unknown-$$-$RANDOM" # not a git checkout: always reinstalled
  fi
}

install_tool() { # install_tool SOURCE VERSION
  local source=$1 version=$2 target=$bin_dir/orchestrator installed path id
  need_uv
  installed=$(tool_version)
  id=$(source_id "$source")
  if [ "$installed" = "$version" ] && [ -e "$target" ] && [ $force -eq 0 ] \
    && [ "$(cat "$source_file" 2>/dev/null || true)" = "$id" ] \
    && [ -n "$(recorded uv-tool | grep -F -x "$target" || true)" ]; then
    echo "already installed, unchanged: $PACKAGE $version as a uv tool ($target)"
    return
  fi
  local before=""
  if [ -e "$target" ] || [ -L "$target" ]; then before=$target; fi
  if [ -n "$(recorded binary | grep -F -x "$target" || true)" ]; then
    forget "$target" # the uv tool's link takes its place
    before="$target (the standalone executable)"
  fi
  # --force: replace an `orchestrator` already in the folder (an older install, the
  # executable); --reinstall-package: a rebuilt wheel of the same version is taken too.
  UV_TOOL_BIN_DIR=$bin_dir uv tool install --quiet --force --reinstall-package "$PACKAGE" "$source"
  record uv-tool "$target"
  echo "$id" >"$source_file"
  if [ "$installed" = "$version" ]; then
    echo "reinstalled $PACKAGE $version as a uv tool ($target)"
  elif [ -n "$installed" ]; then
    echo "replaced $PACKAGE $installed with $version as a uv tool ($target)"
  elif [ -n "$before" ]; then
    echo "replaced $before with $PACKAGE $version as a uv tool"
  else
    echo "installed $PACKAGE $version as a uv tool ($target)"
  fi
}

wheel_version() { # agent_orchestrator-0.1.0-py3-none-any.whl -> 0.1.0
  local name
  name=$(basename "$1")
  name=${name#agent_orchestrator-}
  echo "${name%%-*}"
}

checkout_version() {
  sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$here/orchestrator/__init__.py"
}

check_path() {
  case ":$PATH:" in
    *":$bin_dir:"*) ;;
    *)
      echo "warning: $bin_dir is not on PATH: add this line to your shell's profile" \
        "(~/.bashrc, ~/.zshrc, ~/.profile), then open a new shell:" >&2
      echo "  export PATH=\"$bin_dir:\$PATH\"" >&2
      ;;
  esac
}

check_agents() {
  local missing=0 name package what
  for name in claude codex gemini; do
    case $name in
      claude) package=@anthropic-ai/claude-code what="Claude Code" ;;
      codex) package=@openai/codex what="Codex CLI" ;;
      gemini) package=@google/gemini-cli what="Gemini CLI" ;;
    esac
    if command -v "$name" >/dev/null 2>&1; then
      echo "found $name ($what): $(command -v "$name")"
    else
      echo "missing $name ($what): npm install -g $package"
      missing=1
    fi
  done
  if [ $missing -eq 1 ]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "(npm comes with Node.js: https://nodejs.org, or your package manager's nodejs)"
    fi
    echo "the agents' tools need these CLIs and their keys (\`orchestrator doctor\` checks both);" \
      "the demo agent needs none: orchestrator init && orchestrator submit --agent demo" \
      "--prompt hi && orchestrator run --once"
  fi
}

do_install() {
  if [ -z "$binary" ] && [ -z "$wheel" ] && [ -f "$here/dist/orchestrator" ]; then
    binary=$here/dist/orchestrator
  elif [ -z "$binary" ] && [ -z "$wheel" ] && [ -d "$here/dist/orchestrator" ]; then
    echo "note: dist/orchestrator is a --onedir build (a folder): install.sh installs" \
      "one-file builds; installing this checkout as a uv tool instead" >&2
  fi
  if [ -n "$binary" ]; then
    install_binary "$binary"
  elif [ -n "$wheel" ]; then
    [ -f "$wheel" ] || die "$wheel: no such wheel"
    install_tool "$wheel" "$(wheel_version "$wheel")"
  elif [ -f "$here/pyproject.toml" ] && [ -f "$here/orchestrator/__init__.py" ]; then
    install_tool "$here" "$(checkout_version)"
  else
    die "nothing to install: no dist/orchestrator beside install.sh and no checkout here;" \
      "give --binary PATH or --wheel PATH"
  fi
  check_path
  check_agents
}

do_uninstall() {
  local path done=0
  while IFS= read -r path <&3; do
    if [ -e "$path" ]; then
      rm -f "$path"
      echo "removed $path"
    else
      echo "$path is gone already"
    fi
    forget "$path"
    done=1
  done 3< <(recorded binary)
  while IFS= read -r path <&3; do
    uninstall_tool "$path"
    done=1
  done 3< <(recorded uv-tool)
  if [ $done -eq 0 ]; then
    echo "nothing to uninstall: install.sh has installed nothing for this user"
    if [ -e "$bin_dir/orchestrator" ]; then
      echo "($bin_dir/orchestrator was not installed by install.sh: left alone)"
    fi
  fi
}

"do_$action"
