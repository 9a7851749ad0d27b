/* The subcommands of the wirewarden binary, as cli/main.c dispatches them.
 * Each takes the arguments after its own name (argv[0] is the subcommand
 * name, as getopt expects) and returns the process exit status: 0 success,
 * 1 a runtime failure (unreadable capture, failed write), 2 a usage error. */
#ifndef WW_CLI_CLI_H
#define WW_CLI_CLI_H

#include <stdio.h>

enum cli_exit { CLI_OK = 0, CLI_FAILURE = 1, CLI_USAGE = 2 };

/* `wirewarden sniff`: reads a pcap/pcapng capture and reports MQTT packets
 * and flows (cli/cmd_sniff.c). */
int cmd_sniff(int argc, char **argv);

/* Writes the usage text of `wirewarden sniff` to <out>. */
void cmd_sniff_usage(FILE *out);

/* `wirewarden proxy`: the MQTT edge proxy (proxy/run.c). */
int cmd_proxy(int argc, char **argv);
void cmd_proxy_usage(FILE *out);

/* `wirewarden why`: one client's sessions and why each ended (cli/why.c). */
int cmd_why(int argc, char **argv);
void cmd_why_usage(FILE *out);

#endif
