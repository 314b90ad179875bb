--- The help texts of `objstore` and each of its commands.
local _M = {}

_M.main = [==[
Usage: objstore COMMAND [options] ARGS

Object storage from the shell: Amazon S3, S3-compatible stores (s3://) and
Alibaba Cloud OSS (oss://). Local paths are plain paths; "-" is stdin/stdout.

Commands:
  ls [URL]            list buckets, or objects under a prefix
  cp SRC DST          copy a file or object (-r: a directory or prefix)
  mv SRC DST          copy, then remove the source
  rm URL              delete an object (-r: every object under a prefix)
  sync SRC DST        make DST like SRC (local <-> remote, remote -> remote)
  check SRC DST       report what differs, changing nothing
  cat URL             write an object to stdout
  stat URL            show an object's metadata
  mb URL              make a bucket
  rb URL              remove a bucket (--force empties it first)
  presign URL         print a presigned URL
  du URL              total size and count under a prefix
  uploads URL         incomplete multipart uploads under a prefix (--abort removes them)
  version             objstore's version, and the Lua, libcurl and OpenSSL in use

Options for every command:
  --profile NAME      profile of ~/.aws/config and ~/.aws/credentials; it wins
                      over AWS_* keys in the environment (a missing one is an error)
  --endpoint URL      endpoint (default: AWS_ENDPOINT_URL / OSS_ENDPOINT, or the provider's)
  --region NAME       region (default: AWS_REGION / OSS_REGION, or the profile's)
  --signature v4|v1   OSS signature version (default v4, or OSS_SIGNATURE_VERSION);
                      s3:// is always v4
  --json              one JSON object per line on stdout (one per action, progress
                      with total_bytes/total_files, a summary)
  -q, --quiet         no progress, no summary
  -h, --help          this text; `objstore COMMAND --help` for a command
  --version           as `objstore version`
  --timeout S         seconds for a whole request (1-86400)
  --connect-timeout S seconds to connect (1-3600)
  --retries N         retries of a failed request (0-100; default 2, or
                      AWS_MAX_ATTEMPTS - 1); each retry is a notice on stderr
  --ca-bundle FILE    CA certificates (default AWS_CA_BUNDLE, or the system's)
  --no-verify-ssl     do not verify the server's certificate (tests only)
Each command takes only the options its help lists: any other is a usage
error (exit 2), never silently ignored.

Credentials come from the library's default chain: AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (OSS_ACCESS_KEY_ID /
OSS_ACCESS_KEY_SECRET for oss://), ~/.aws files, and the instance/container
providers.

Progress goes to stderr: one redrawn line on a terminal (bytes of the total,
percentage, rate, ETA, files done/total; cleared before other output, cut to
the width: COLUMNS or the terminal's); a plain line every 5 s otherwise
(OBJSTORE_PROGRESS_INTERVAL); JSON stats with --json; none in a dry run.

Exit codes: 0 success; 1 some operations failed (each on stderr with its key),
or a write to stdout failed; 2 usage error; 3 --max-delete exceeded (nothing
deleted); 130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM: the transfer in
flight stops, temporary files are removed and a multipart upload in flight is
aborted. A full disk stops the run at once (exit 1).
]==]

_M.uploads = [==[
Usage: objstore uploads s3://BUCKET[/PREFIX] [--abort [--dry-run]]
  Lists the incomplete multipart uploads under PREFIX (initiated, upload id,
  key); --json: {"type":"upload","key":...,"upload_id":...,"initiated":...}.
  --abort removes them (their parts are billed until then); with --dry-run
  it lists what it would abort. An interrupted `cp` keeps its upload to
  resume it: abort it only if you will not run that cp again.
]==]

_M.version = [==[
Usage: objstore version (or objstore --version)
  objstore's version and the Lua, libcurl and OpenSSL it runs with;
  --json: {"objstore":...,"lua":...,"libcurl":...,"openssl":...}.
]==]

_M.ls = [==[
Usage: objstore ls [s3://BUCKET[/PREFIX]] [-r] [-h] [--summarize] [--versions]
  Without a URL: the buckets. With one: objects and common prefixes under
  PREFIX ("PRE name/" lines); -r lists every object below it.
  -h, --human-readable  sizes as 1.5 MiB (here -h is not --help)
  --summarize           the number of objects and their total size at the end
  --versions            every version and delete marker under PREFIX, one level
                        unless -r (version id, "(latest)"); --json: version_id,
                        is_latest, delete_marker
  --json: {"key":...,"size":...,"etag":...,"last_modified":...} per line.
]==]

_M.cp = [==[
Usage: objstore cp SRC DST [options]
  SRC, DST: a local path, s3://bucket/key, oss://bucket/key, or "-":
    objstore cp file.txt s3://b/dir/       upload (key dir/file.txt)
    objstore cp s3://b/key ./local          download (temp file, renamed when complete
                                            and verified; missing directories are made)
    objstore cp s3://b/a s3://b/b           server-side copy
    cat big.log | objstore cp - s3://b/k    stream stdin (unknown size, bounded memory)
    objstore cp s3://b/k -                  stream to stdout
  -r, --recursive      copy a directory or prefix: what is missing or differs is
                       copied, as `sync` without --delete
  --dry-run            print what would be copied, send no write, change no file
  -v, --verbose        with -r: a line per file copied ("upload: SRC to DST")
  --concurrency N      requests in flight (1-1024; default 16, 8 parts per file)
  --part-size SIZE     multipart part size (5M-5G, e.g. 8M)
  --bwlimit SIZE       bytes per second between a file and the store (e.g. 10M)
  For uploads (and server-side copies, but --sse-c-key):
  --content-type TYPE  instead of the type guessed from the extension (stdin too)
  --cache-control V, --content-disposition V   stored with the object
  --metadata K=V       user metadata (repeatable; not mtime or objstore-*)
  --storage-class C    STANDARD, STANDARD_IA, ... (as the store names them)
  --acl ACL            private, public-read, bucket-owner-full-control, ...
  --sse AES256|aws:kms (KMS, SM4 on oss://), --sse-kms-key-id ID
  --sse-c-key file:PATH|env:NAME   SSE-C key (32 bytes, raw or base64), also to
                       read it back; never the key itself on the command line
  --version-id ID      that version of the source object (a download, or a
                       server-side copy: CopyObject or UploadPartCopy)
  --resume             keep a checkpoint under $XDG_STATE_HOME/objstore/transfers/
                       (a single cp or mv between a file and the store), so that
                       after Ctrl-C or kill -9 the same command with --resume goes
                       on where it stopped (a file changed since is sent again
                       whole); without it an interrupt removes the part file and
                       aborts the upload
  With -r only: --include, --exclude, --checksum, --size-only, --modify-window,
  --no-state, --state-file, --follow-symlinks (see `objstore sync --help`).
  The file mtime is stored in `mtime` metadata.
]==]

_M.mv = [==[
Usage: objstore mv SRC DST [options]
  Copies, then removes the source: each source only after its own copy
  succeeded and was verified (the server checked the MD5 of an upload; a
  download's MD5 or CRC matched; a server-side copy has the source's ETag or
  its parts were checked). A source that could not be verified is kept and
  reported (exit 1). With -r a source the destination already has is removed
  only when its content was compared equal; otherwise it is copied again.
  A move onto itself (or into an overlapping prefix) is refused.
  --version-id ID (without -r): copies that version of the source object,
  then deletes that version alone, for good (other versions stay; if it was
  the latest, the one before it becomes current). aws s3 mv has no such option.
  Options: those of cp.
]==]

_M.rm = [==[
Usage: objstore rm s3://BUCKET/KEY [-r] [-v] [--include GLOB] [--exclude GLOB] [--dry-run]
  -r deletes every object under the prefix KEY/ (batches of 1000, as the
  listing goes; only keys below the prefix, whatever the store answers). A
  listing that fails stops the run (exit 1): nothing after it is deleted.
  --dry-run prints each object that would be deleted and deletes nothing.
  -v, --verbose: a line per object deleted ("delete: s3://b/k").
  --version-id ID (without -r): that version of the key, for good.
]==]

_M.sync = [==[
Usage: objstore sync SRC DST [options]
  Makes DST like SRC: local -> remote, remote -> local, remote -> remote
  (server-side on one endpoint). Compares size and mtime by default.
  A walk or listing that is incomplete on either side (an unreadable
  directory, a failed page) deletes nothing and exits 1.
  --checksum           compare content (MD5 / stored CRC-64 / the multipart
                       ETag recomputed); what cannot be compared is counted as
                       "not compared", never as the same
  --size-only          compare sizes only
  --delete             delete DST entries missing from SRC (after the transfers;
                       never when a transfer failed or the source is missing/empty)
  --max-delete N       more deletes than N: delete nothing, exit 3
  --force              allow --delete with an empty source
  --backup PREFIX|URL|DIR  move deleted entries there instead (with --delete)
  --delete-excluded    delete excluded DST entries too
  --include GLOB, --exclude GLOB   ordered, first match wins (repeatable)
  --dry-run            print the plan (each action with its reason), send no write
  -v, --verbose        a line per file acted on ("upload: SRC to DST", "delete: DST")
  --no-state           no sync-state file
  --state-file PATH    the sync-state file (default: under $XDG_STATE_HOME/objstore/,
                       ~/.local/state/objstore/, never in the synced directory)
  --modify-window S    mtime slack in seconds
  --concurrency N      requests in flight (1-1024, default 16)
  --part-size SIZE     multipart part size (5M-5G)
  --bwlimit SIZE       bytes per second (e.g. 10M)
  --follow-symlinks    follow symbolic links (loops are detected; nothing is
                       written or deleted outside the tree)
  For uploads:
  --content-type TYPE  instead of the type guessed from the extension (stdin too)
  --cache-control V, --content-disposition V   stored with the object
  --metadata K=V       user metadata (repeatable; not mtime or objstore-*)
  --storage-class C    STANDARD, STANDARD_IA, ... (as the store names them)
  --acl ACL            private, public-read, bucket-owner-full-control, ...
  --sse AES256|aws:kms (KMS, SM4 on oss://), --sse-kms-key-id ID
  --sse-c-key file:PATH|env:NAME   SSE-C key (32 bytes, raw or base64), also to
                       read it back; never the key itself on the command line
]==]

_M.check = [==[
Usage: objstore check SRC DST [--checksum | --size-only] [--modify-window S]
                    [--include GLOB] [--exclude GLOB] [--follow-symlinks]
  Lists what differs, what is missing on DST, what DST has in addition, and
  (with --checksum) what could not be compared; exit 0 only when everything
  was compared and matches, 1 otherwise. Nothing is written. Without
  --checksum it compares size and modification time, not content: the
  summary line on stderr says what was compared.
]==]

_M.cat = [==[
Usage: objstore cat s3://BUCKET/KEY [--version-id ID] [--sse-c-key file:PATH|env:NAME]
  Streams the object (or that version of it) to stdout (--sse-c-key: an
  SSE-C object's key).
]==]

_M.stat = [==[
Usage: objstore stat s3://BUCKET/KEY [--version-id ID] [--sse-c-key file:PATH|env:NAME]
  Size, ETag, Last-Modified, Content-Type, Cache-Control, Content-Disposition,
  storage class, encryption and user metadata.
]==]

_M.mb = [==[
Usage: objstore mb s3://BUCKET [--dry-run]
]==]

_M.rb = [==[
Usage: objstore rb s3://BUCKET [--force] [--dry-run]
  --force deletes every object and incomplete upload first; the bucket is
  removed only when all of them were.
]==]

_M.presign = [==[
Usage: objstore presign s3://BUCKET/KEY [--expires-in SECONDS] [--method GET|PUT]
  --expires-in: seconds the URL is valid, 1 to 604800 (default 3600).
]==]

_M.du = [==[
Usage: objstore du s3://BUCKET[/PREFIX]
  Total bytes and object count under PREFIX.
]==]

return _M
