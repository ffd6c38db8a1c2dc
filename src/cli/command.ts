import { Command, type Option } from "commander";

/** commander methods its typings leave out (stable since commander 2) */
interface CommanderInternals {
  unknownOption(flag: string): never;
  missingMandatoryOptionValue(option: Option): never;
}
const base = Command.prototype as unknown as CommanderInternals;

/**
 * commander reports a missing required option before an unknown one, so `--inventroy FILE`
 * said "required option '--inventory <file>' not specified" instead of naming the typo. This
 * command reports the unknown option first, with commander's "did you mean" suggestion.
 */
export class CliCommand extends Command {
  private unknown: string[] = [];

  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  override parseOptions(args: string[]): { operands: string[]; unknown: string[] } {
    const parsed = super.parseOptions(args);
    this.unknown = parsed.unknown;
    return parsed;
  }

  /** called by commander for a required option left out */
  missingMandatoryOptionValue(option: Option): never {
    const typo = this.unknown.find((a) => a.startsWith("--") || /^-[^-]/.test(a));
    if (typo) base.unknownOption.call(this, typo.split("=")[0]!);
    return base.missingMandatoryOptionValue.call(this, option);
  }
}
