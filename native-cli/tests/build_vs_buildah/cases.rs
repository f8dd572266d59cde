//! The differential cases: Dockerfiles without RUN (every instruction and flag) and with RUN, each built by us
//! and by buildah.

use super::*;

const WHY_ARCHIVE_CHOWN: &str = "BuildKit applies ADD --chown to an archive's unpacked entries (measured: tests/buildkit/cases/add_tar_chown); buildah keeps the archive's owners";

/// Cases without RUN, covering every instruction and flag the builder supports.
pub(super) fn cases() -> Vec<Case> {
    vec![
        case(
            "scratch_copy_files",
            "FROM scratch\nCOPY a.txt /\nCOPY a.txt /renamed.txt\nCOPY a.txt b.txt /multi/\nCOPY run.sh secret.txt /modes/\n",
        ),
        case(
            "copy_dir_contents",
            "FROM scratch\nCOPY dir /d1/\nCOPY dir /d2\nCOPY dir/sub /d3/sub2/\nCOPY dir/ /d4/\n",
        ),
        // A new COPY destination of a directory source is 0755 whatever the source's mode, in buildah as in
        // BuildKit (measured: tests/buildkit/cases/copy_dir_mode).
        case(
            "copy_wildcards",
            "FROM scratch\nCOPY *.txt /w1/\nCOPY dir/*/two.txt /w2/\nCOPY d?r /w3/\nCOPY dir/sub/[d]eeper /w4/\nCOPY *.sh /single-match\n",
        ),
        case(
            "copy_trailing_slash_and_workdir",
            "FROM scratch\nWORKDIR /wd\nCOPY a.txt rel.txt\nCOPY a.txt reldir/\nCOPY b.txt .\nCOPY dir ./dcopy\n",
        ),
        case(
            "copy_symlink_emptydir",
            "FROM scratch\nCOPY dir/link /l1\nCOPY dir/empty /e1/\n",
        ),
        // Hard links inside one copied directory stay links (checked by copy_dir_contents); files named as separate
        // sources are separate BuildKit copy actions, each with its own inode map, so they arrive as two files.
        Case {
            bug: Some("hard-linked files named as separate sources of one COPY stay hard links"),
            ..case(
                "copy_hardlinks_separate_sources",
                "FROM scratch\nCOPY dir/hard1 dir/hard2 /h/\n",
            )
        },
        case("copy_context_root", "FROM scratch\nCOPY . /ctx/\n"),
        Case {
            buildah_dockerfile: Some((
                "FROM scratch\nARG F=a.txt\nENV D=/exp\nCOPY $F ${D}/\nCOPY a.txt $D/again.txt\n",
                "buildah 1.28 lacks ${VAR%suffix}; the equivalent writes the expanded word",
            )),
            ..case(
                "copy_expands_args_and_env",
                "FROM scratch\nARG F=a.txt\nENV D=/exp\nCOPY $F ${D}/\nCOPY ${F%.txt}.txt $D/again.txt\n",
            )
        },
        case(
            "copy_ignores_user",
            "FROM lwtest/busybox:1\nUSER app\nCOPY a.txt /as-user.txt\nADD arch.tar.gz /as-user/\n",
        ),
        case(
            "copy_onto_base",
            "FROM lwtest/busybox:1\nCOPY a.txt /etc/\nCOPY b.txt /etc/existing.txt\nCOPY dir /opt/\nCOPY a.txt /bin/newdir/\n",
        ),
        Case {
            bug: Some("COPY of a directory onto an existing directory replaces that directory's mode (0700 -> 0755)"),
            ..case("copy_dir_onto_existing_dir", "FROM lwtest/busybox:1\nCOPY dir /srv/\n")
        },
        Case {
            bug: Some("COPY to a destination under a symlink replaces the symlink with a directory"),
            ..case(
                "copy_through_dest_symlink",
                "FROM lwtest/busybox:1\nCOPY a.txt /var/link-to-srv/\n",
            )
        },
        case(
            "chown_numeric",
            "FROM scratch\nCOPY --chown=1000:1000 dir /o1/\nCOPY --chown=42 a.txt /o2.txt\nCOPY --chown=7:8 a.txt b.txt /o3/\nADD --chown=5:6 b.txt /o4.txt\nARG ID=77\nCOPY --chown=$ID:${ID} a.txt /o5.txt\n",
        ),
        case(
            "chown_names",
            "FROM lwtest/busybox:1\nCOPY --chown=app:appgrp a.txt /n2.txt\nCOPY --chown=1001:appgrp a.txt /n3.txt\nCOPY --chown=app:1005 a.txt /n4.txt\nCOPY --chown=root:staff a.txt /n5.txt\nCOPY --chown=app:appgrp dir /chdir/\n",
        ),
        // A user name alone: the reference says "the GID is set to the same numeric value as the UID", but BuildKit's
        // code (readUser) and buildah take the user's primary group from /etc/passwd (1001:1002 here), as we do.
        case(
            "chown_name_only",
            "FROM lwtest/busybox:1\nCOPY --chown=app a.txt /n1.txt\n",
        ),
        Case {
            witness_overrides: &[(
                "m4",
                "dir 0700 3:4 size=0",
                "BuildKit gives the directories a COPY creates an octal --chmod's mode (measured: \
                 tests/buildkit/cases/copy_chmod_octal); buildah makes them 0755",
            )],
            ..case(
                "chmod_octal",
                "FROM scratch\nCOPY --chmod=0640 a.txt /m1.txt\nCOPY --chmod=755 dir /m2/\nADD --chmod=600 b.txt /m3.txt\nCOPY --chown=3:4 --chmod=0700 a.txt b.txt /m4/\n",
            )
        },
        Case {
            buildah_dockerfile: Some((
                "FROM scratch\nCOPY --chmod=0755 a.txt /s1.txt\nCOPY --chmod=0755 b.txt /s2.txt\nCOPY --chmod=0660 secret.txt /s3.txt\n",
                "buildah 1.28 parses only octal --chmod; the modes are what chmod(1) symbols give on 0644/0644/0600",
            )),
            ..case(
                "chmod_symbolic",
                "FROM scratch\nCOPY --chmod=u=rwx,go=rx a.txt /s1.txt\nCOPY --chmod=+x b.txt /s2.txt\nCOPY --chmod=g=u secret.txt /s3.txt\n",
            )
        },
        Case {
            buildah_dockerfile: Some((
                "FROM scratch\nENV NAME=world\nCOPY heredoc/h1.txt /h1.txt\nCOPY heredoc/h2.txt /h2.txt\nCOPY --chmod=0755 heredoc/h3.sh /h3.sh\n",
                "buildah 1.28 has no heredocs; context files hold the documented contents (expanded unless quoted)",
            )),
            ..case(
                "copy_heredoc",
                "FROM scratch\nENV NAME=world\nCOPY <<EOF /h1.txt\nhello $NAME\nEOF\nCOPY <<'EOF' /h2.txt\nhello $NAME\nEOF\nCOPY --chmod=0755 <<EOF /h3.sh\n#!/bin/sh\necho hi\nEOF\n",
            )
        },
        Case {
            buildah_dockerfile: Some((
                "FROM scratch\nCOPY ex/sub/keep2.txt /p/ex/sub/\nCOPY ex/keep.txt /p/ex/\n",
                "buildah 1.28 has no COPY --parents; the equivalent spells out the parent directories",
            )),
            ..case(
                "copy_parents",
                "FROM scratch\nCOPY --parents ex/sub/keep2.txt ex/keep.txt /p/\n",
            )
        },
        Case {
            buildah_dockerfile: Some((
                "FROM scratch\nCOPY ex/keep.txt /x/\nCOPY ex/sub/keep2.txt /x/sub/\nADD ex/sub/drop2.log /y/sub/\nADD ex/drop.log /y/\n",
                "buildah 1.28 has no --exclude; the equivalent copies only what the patterns keep",
            )),
            ..case(
                "copy_add_exclude",
                "FROM scratch\nCOPY --exclude=**/*.log ex /x/\nADD --exclude=**/*.txt ex /y/\n",
            )
        },
        case(
            "add_local_archives",
            "FROM scratch\nADD arch.tar.gz /x/\nADD arch.tar.gz /y\nADD plain.tar /z/\nADD a.txt /plain-add.txt\nADD dir /addd/\n",
        ),
        Case {
            witness_overrides: &[
                ("c/root.txt", "file 0600 9:9 size=10 sha256=2555f1bdecf3", WHY_ARCHIVE_CHOWN),
                ("c/top", "dir 0750 9:9 size=0", WHY_ARCHIVE_CHOWN),
                ("c/top/exe", "file 0755 9:9 size=10 sha256=a8076d3d28d2", WHY_ARCHIVE_CHOWN),
                ("c/top/file.txt", "file 0640 9:9 size=11 sha256=a40e667da24b", WHY_ARCHIVE_CHOWN),
                ("c/top/link", "symlink 0777 9:9 size=0 -> file.txt", WHY_ARCHIVE_CHOWN),
            ],
            ..case("add_archive_chown", "FROM scratch\nADD --chown=9:9 arch.tar.gz /c/\n")
        },
        case(
            "workdir",
            "FROM scratch\nWORKDIR /a/b/c\nWORKDIR rel\nENV D=/env/dir\nWORKDIR $D\nWORKDIR ../up\n",
        ),
        case(
            "workdir_existing",
            "FROM lwtest/busybox:1\nWORKDIR /srv\nWORKDIR /var/link-to-srv\n",
        ),
        Case {
            bug: Some("WORKDIR creates its directories as root instead of as USER"),
            ..case(
                "workdir_owned_by_user",
                "FROM lwtest/busybox:1\nUSER app\nWORKDIR /owned/by/user\n",
            )
        },
        case(
            "env_scratch",
            "FROM scratch\nENV A=1 B=\"two words\" C=three\\ words\nENV D $A-${B}\nENV E=${UNSET:-default} F=${A:+alt}\nENV PATH=$PATH:/extra\n",
        ),
        case(
            "env_on_base",
            "FROM lwtest/busybox:1\nENV PATH=/usr/bin:$PATH\nENV X=1\nENV X=2 Y=$X\n",
        ),
        Case {
            args: &["--build-arg", "OVER=cli", "--build-arg", "UNDECLARED=x"],
            ..case(
                "args_global_stage_cli",
                "ARG BASE=lwtest/busybox:1\nARG GLOBAL=g\nFROM $BASE\nARG GLOBAL\nARG LOCAL=l\nARG OVER=default\nARG NODEF\nLABEL g=$GLOBAL l=$LOCAL o=$OVER n=${NODEF:-unset}\nENV FROMARG=$LOCAL\n",
            )
        },
        Case {
            args: &["--label", "cli=1"],
            ..case(
                "labels",
                "FROM lwtest/busybox:1\nLABEL a=b \"with space\"=\"v w\"\nLABEL multi=\"line1 \\\n line2\"\nARG V=expanded\nLABEL v=$V\n",
            )
        },
        case(
            "expose",
            "FROM scratch\nEXPOSE 80 443/tcp 53/udp\nARG P=8080\nEXPOSE $P\n",
        ),
        case("expose_range", "FROM scratch\nEXPOSE 7000-7002/udp\n"),
        case("user_name_group", "FROM lwtest/busybox:1\nUSER app:appgrp\n"),
        case("user_numeric", "FROM scratch\nUSER 1000:1000\n"),
        case(
            "volume",
            "FROM lwtest/busybox:1\nVOLUME [\"/data\", \"/logs\"]\nVOLUME /x /y\n",
        ),
        case(
            "entrypoint_resets_base_cmd",
            "FROM lwtest/busybox:1\nENTRYPOINT [\"/bin/echo\"]\n",
        ),
        case(
            "cmd_then_entrypoint_keeps_cmd",
            "FROM lwtest/busybox:1\nCMD [\"a\", \"b\"]\nENTRYPOINT [\"/bin/echo\"]\n",
        ),
        case(
            "cmd_entrypoint_shell_form",
            "FROM lwtest/busybox:1\nENTRYPOINT echo start\nCMD echo hi \"quoted arg\"\n",
        ),
        case(
            "shell_changes_shell_forms",
            "FROM lwtest/busybox:1\nSHELL [\"/bin/busybox\", \"sh\", \"-eu\", \"-c\"]\nCMD echo $HOME\nENTRYPOINT exec echo\n",
        ),
        case(
            "healthcheck_options",
            "FROM lwtest/busybox:1\nHEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=4 CMD wget -q http://x/ || exit 1\n",
        ),
        case(
            "healthcheck_exec_form",
            "FROM lwtest/busybox:1\nHEALTHCHECK CMD [\"/bin/true\"]\n",
        ),
        case(
            "healthcheck_none",
            "FROM lwtest/busybox:1\nHEALTHCHECK CMD [\"/bin/true\"]\nHEALTHCHECK NONE\n",
        ),
        case(
            "stopsignal",
            "FROM lwtest/busybox:1\nARG SIG=SIGUSR1\nSTOPSIGNAL $SIG\n",
        ),
        case(
            "onbuild_stored",
            "FROM lwtest/busybox:1\nONBUILD COPY a.txt /onbuild.txt\nONBUILD LABEL triggered=yes\n",
        ),
        Case {
            parent: Some(
                "FROM lwtest/busybox:1\nONBUILD COPY a.txt /onbuild.txt\nONBUILD LABEL triggered=yes\nLABEL parent=1\n",
            ),
            ..case(
                "onbuild_triggered",
                "FROM lwtest/parent-onbuild_triggered:1\nLABEL child=1\n",
            )
        },
        case("multistage", MULTISTAGE),
        Case {
            bug: Some("COPY --from=stage keeps hard links pointing at the source stage's paths"),
            ..case(
                "copy_from_stage_hardlinks",
                "FROM lwtest/busybox:1 AS build\nCOPY dir /built/dir\nFROM scratch\nCOPY --from=build /built /out/\n",
            )
        },
        Case {
            args: &["--target", "mid"],
            ..case("multistage_target", MULTISTAGE)
        },
        case(
            "from_stage_inherits",
            "FROM lwtest/busybox:1 AS base\nENV X=1\nLABEL l=1\nWORKDIR /w\nUSER app\nFROM base\nENV Y=2\n",
        ),
    ]
}

/// Stages used, unused (one that could not build) and targeted; `--from` a stage by name and index, and an image.
const MULTISTAGE: &str = "FROM lwtest/busybox:1 AS build\nCOPY a.txt /built/a.txt\nCOPY dir/sub /built/dir/\n\
FROM scratch AS unused\nCOPY does-not-exist /\n\
FROM build AS mid\nENV MID=1\nCOPY b.txt /mid/\n\
FROM scratch\nCOPY --from=build /built /out/\nCOPY --from=0 /etc/passwd /passwd\nCOPY --from=mid /mid/b.txt /mid-b.txt\nCOPY --from=lwtest/busybox:1 /etc/group /group\n";

/// Cases with RUN: switched on once the RUN executor exists.
pub(super) fn run_cases() -> Vec<Case> {
    vec![
        case(
            "run_basic",
            "FROM lwtest/busybox:1\nRUN echo hi > /hi.txt\nRUN mkdir -p /a/b && echo x > /a/b/c && chmod 600 /a/b/c\n",
        ),
        case(
            "run_deletes_make_whiteouts",
            "FROM lwtest/busybox:1\nRUN rm /etc/existing.txt && rm -r /srv\n",
        ),
        case(
            "run_env_user_workdir_shell",
            "FROM lwtest/busybox:1\nENV GREETING=hello\nWORKDIR /w\nSHELL [\"/bin/sh\", \"-c\"]\nRUN echo $GREETING > out.txt\nUSER app\nRUN echo $GREETING > /tmp/as-app.txt\n",
        ),
        case(
            "run_exec_form_and_args",
            "FROM lwtest/busybox:1\nARG A=fromarg\nRUN [\"/bin/sh\", \"-c\", \"echo $A > /a.txt\"]\n",
        ),
        case(
            "run_file_kinds_and_owners",
            "FROM lwtest/busybox:1\nRUN ln -s /etc/passwd /pl && ln /etc/group /hg && mkdir -m 0700 /private && echo f > /private/f && chown 1001:1003 /private/f && chmod 4755 /private/f\n",
        ),
        case(
            "run_replaces_dir_with_file",
            "FROM lwtest/busybox:1\nRUN rm -r /srv && echo now-a-file > /srv\n",
        ),
        case(
            "run_recreates_dir",
            "FROM lwtest/busybox:1\nRUN rm -r /var && mkdir /var && echo new > /var/only\n",
        ),
        case(
            "run_as_user",
            "FROM lwtest/busybox:1\nUSER app\nRUN echo mine > /tmp/mine.txt\n",
        ),
        case(
            "run_mount_bind",
            "FROM lwtest/busybox:1\nRUN --mount=type=bind,source=a.txt,target=/m cat /m > /copied.txt\n",
        ),
        case(
            "run_mount_bind_dir_and_stage",
            "FROM lwtest/busybox:1 AS gen\nRUN mkdir /out && echo generated > /out/g.txt\n\
             FROM lwtest/busybox:1\nRUN --mount=type=bind,source=dir,target=/d ls -R /d > /dir-list.txt\n\
             RUN --mount=type=bind,from=gen,source=/out,target=/g cat /g/g.txt > /from-stage.txt\n\
             RUN --mount=type=bind,target=/ctx cat /ctx/b.txt > /from-root.txt\n",
        ),
        Case {
            parent: Some("FROM lwtest/busybox:1\nONBUILD RUN echo triggered > /ob.txt\n"),
            ..case(
                "run_onbuild_trigger",
                "FROM lwtest/parent-run_onbuild_trigger:1\nLABEL child=1\n",
            )
        },
    ]
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures.
