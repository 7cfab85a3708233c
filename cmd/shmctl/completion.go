package main

import (
	"fmt"
	"strings"

	"github.com/shmkit/shmkit/segment"
	"github.com/spf13/cobra"
)

func init() {
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print the shell completion script for bash, zsh or fish",
		Long: `completion prints a script that makes the shell complete shmctl's commands,
flags, backends, output formats and segment names. Load it once per shell or
install it where the shell looks for completions.`,
		Example: `  source <(shmctl completion bash)                              # this bash session
  shmctl completion bash > /etc/bash_completion.d/shmctl        # every bash session
  shmctl completion zsh > "${fpath[1]}/_shmctl"                  # zsh (compinit must be on)
  shmctl completion fish > ~/.config/fish/completions/shmctl.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      oneArg,
		RunE: oneLine(func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			switch args[0] {
			case "bash":
				return rootCmd.GenBashCompletionV2(w, true)
			case "zsh":
				return rootCmd.GenZshCompletion(w)
			case "fish":
				return rootCmd.GenFishCompletion(w, true)
			}
			return fmt.Errorf("invalid shell %q (want bash, zsh or fish)", args[0])
		}),
	}
	rootCmd.AddCommand(cmd)
}

// completeSegmentNames completes the NAME argument of a command with the
// shmkit segments on the backend its --backend flag names (posix unless
// given); file segments complete as paths.
func completeSegmentNames(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	b := segment.POSIX
	if f := cmd.Flags().Lookup("backend"); f != nil {
		if v, err := segment.ParseBackend(f.Value.String()); err == nil {
			b = v
		}
	}
	if b == segment.File {
		return nil, cobra.ShellCompDirectiveDefault
	}
	infos, _ := segment.List()
	var names []string
	for _, i := range infos {
		if i.Backend == b && strings.HasPrefix(i.Name, prefix) {
			names = append(names, i.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// registerBackendCompletion completes a --backend flag.
func registerBackendCompletion(cmd *cobra.Command, flag string) {
	_ = cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(
		[]string{"posix", "sysv", "file"}, cobra.ShellCompDirectiveNoFileComp))
}

// completeChannelNames completes a CHANNEL argument with the channels (the
// segments holding a "chan" region) on the backend its --backend flag
// names (posix unless given).
func completeChannelNames(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return channelNames(cmd, prefix), cobra.ShellCompDirectiveNoFileComp
}

func channelNames(cmd *cobra.Command, prefix string) []string {
	b := segment.POSIX
	if f := cmd.Flags().Lookup("backend"); f != nil {
		if v, err := segment.ParseBackend(f.Value.String()); err == nil {
			b = v
		}
	}
	infos, _ := segment.List()
	var names []string
	for _, i := range infos {
		if i.Backend != b || !strings.HasPrefix(i.Name, prefix) {
			continue
		}
		for _, r := range i.Regions {
			if r.Name == "chan" {
				names = append(names, i.Name)
				break
			}
		}
	}
	return names
}

// completeFixed completes a flag with fixed values.
func completeFixed(cmd *cobra.Command, flag string, values ...string) {
	_ = cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}
