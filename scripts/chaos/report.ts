/** The tally of a chaos run as text (what `npm run chaos` prints and docs/reliability.md quotes). */
import type { ChaosReport } from './run.js';

export function formatReport(r: ChaosReport): string {
  const t = r.tally;
  const a = r.asterisk;
  const dead =
    Object.entries(t.deadLettered)
      .map(([code, n]) => `${code} ${n}`)
      .join(', ') || 'none';
  const faults =
    Object.entries(r.faults)
      .sort((x, y) => y[1] - x[1])
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || 'none';
  const faultTotal = Object.values(r.faults).reduce((s, n) => s + n, 0);
  const lines = [
    `published              ${t.published} job ids (${t.builtToFail} built to be dead-lettered: input missing, path outside the roots)`,
    `converted              ${t.converted}`,
    `dead-lettered          ${Object.values(t.deadLettered).reduce((s, n) => s + n, 0)} (${dead})`,
    `good jobs gave up      ${t.goodJobsGaveUp} (ran out of attempts on transient errors)`,
    `wrong outcomes         ${t.wrongOutcomes}${t.wrongOutcomes > 0 ? `  e.g. ${t.wrongOutcomeExamples.slice(0, 3).join('; ')}` : ''}`,
    `missing                ${t.missing}${t.missing > 0 ? `  e.g. ${t.missingIds.slice(0, 5).join(', ')}` : ''}`,
    `duplicate conversions  ${t.duplicateConversions} extra 'converted' results for ${t.jobsConvertedMoreThanOnce} job ids` +
      (t.convertedAndDeadLettered > 0 ? `; ${t.convertedAndDeadLettered} converted ids also dead-lettered by a later copy` : ''),
    `asterisk side          ${a.originates} Originates, ${a.conversionsOk} conversions OK (${a.orphanedOk} as orphans), ` +
      `${a.wavsConvertedMoreThanOnce} WAVs written by more than one attempt`,
    `faults injected        ${faultTotal} (${faults})`,
    `bridge processes       ${r.bridgeStarts} started`,
    `WAVs checked           ${r.wavsChecked} (bad: ${r.badWavs.length})${r.badWavs.length > 0 ? `  e.g. ${r.badWavs.slice(0, 3).join('; ')}` : ''}`,
    `temp files left        ${r.tempFilesLeft.length}`,
    `left in queues         ${r.leftInQueues} (copies of jobs that had already ended)`,
    `bad results            ${t.badResults} malformed, ${t.unknownResults} for unknown ids, ${t.deadLettersWithoutReason} dead letters without a reason`,
    `queue type             ${r.queueType}`,
    `bridge errors logged   ${r.bridgeErrors.length === 0 ? 'none' : r.bridgeErrors.map((x) => `\n  - ${x}`).join('')}`,
    `anomalies              ${r.anomalies.length}${r.anomalies.map((x) => `\n  - ${x}`).join('')}`,
    `wall time              ${(r.wallMs / 1000).toFixed(1)} s`,
    `verdict                ${r.ok ? 'OK: every job id ended converted or dead-lettered with a reason' : 'FAILED'}`,
  ];
  return lines.join('\n');
}
