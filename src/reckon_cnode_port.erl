%%% @doc The spawned C node (spawn mode): `priv/reckon_cnode' as a port
%%% program.
%%%
%%% The port belongs to the connection watcher, {@link reckon_cnode_conn}:
%%% its process opens it (so it is the port's owner, and the port closes if
%%% it dies), passes the port's messages to {@link handle_info/2} and decides
%%% when to start it again. This module knows the port program:
%%% <ul>
%%% <li>its command line ({@link config/1}): `--name <spawn_name>@<this
%%%   host>' (default `<this node's alive part>_cnode'), `--scope', this
%%%   node's `--net-ticktime', the TLS flags of {@link reckon_cnode_tls},
%%%   `--exit-on-stdin-close' and the env `spawn_args'; this node's cookie
%%%   goes in the environment variable `RECKON_CNODE_COOKIE', never on the
%%%   command line;</li>
%%% <li>its output: the one line with its name, printed once it runs, and
%%%   its log lines (`<time> <level> [<module>] <text>'), which go to logger
%%%   at their level, in the domain `[reckon_cnode]';</li>
%%% <li>how it stops ({@link stop/1}): stdin closed, SIGTERM after 2 s,
%%%   SIGKILL 1 s later.</li>
%%% </ul>
%%% @end
-module(reckon_cnode_port).

-include_lib("kernel/include/logger.hrl").

-export([config/1, start/1, restart/1, handle_info/2, stop/1,
         phase/1, os_pid/1]).

-export_type([config/0, prog/0, phase/0]).

%% How long stop/1 waits for the port program after closing its stdin,
%% and then after SIGTERM.
-define(STOP_WAIT, 2000).
-define(KILL_WAIT, 1000).

-type config() :: #{exe := file:filename(),
                    args := [string()],
                    cookie := string(),
                    start_timeout := pos_integer()}.
%% What {@link config/1} made of the application environment.

-type phase() :: down | starting | running.
%% `down': no port program; `starting': waiting for its name line;
%% `running': name known.

-record(prog, {
          cfg :: config(),
          port :: undefined | port(),
          os_pid :: undefined | non_neg_integer(),
          phase = down :: phase(),
          %% a partial line of its output
          line_acc = [] :: string()
         }).

-opaque prog() :: #prog{}.
%% The port program as its owner sees it.

%% @doc The port program's command line, cookie and start timeout, from the
%% application environment (`spawn_name', `spawn_args', `spawn_timeout',
%% `tls') and the scope `Scope' it is to serve. Fails with
%% `{cnode_executable_missing, What}' when `priv/reckon_cnode' is not there,
%% or with the error of {@link reckon_cnode_tls:args/1}.
-spec config(atom()) -> {ok, config()} | {error, term()}.
config(Scope) ->
    case code:priv_dir(reckon_cnode) of
        {error, bad_name} ->
            {error, {cnode_executable_missing, no_priv_dir}};
        Priv ->
            Exe = filename:join(Priv, "reckon_cnode"),
            case filelib:is_regular(Exe) of
                false ->
                    {error, {cnode_executable_missing, Exe}};
                true ->
                    config(Exe, Scope)
            end
    end.

config(Exe, Scope) ->
    [Alive, Host] = string:split(atom_to_list(erlang:node()), "@"),
    Name = case env(spawn_name, undefined) of
               undefined -> Alive ++ "_cnode";
               N when is_atom(N) -> atom_to_list(N);
               N when is_list(N) -> N
           end,
    Extra = env(spawn_args, []),
    StartTimeout = env(spawn_timeout, 10000),
    case reckon_cnode_tls:args(env(tls, undefined)) of
        {ok, TlsArgs} ->
            Args = ["--name", Name ++ "@" ++ Host,
                    "--scope", atom_to_list(Scope)]
                ++ ticktime_args()
                ++ TlsArgs
                ++ ["--exit-on-stdin-close" | Extra],
            {ok, #{exe => Exe,
                   args => Args,
                   cookie => atom_to_list(erlang:get_cookie()),
                   start_timeout => StartTimeout}};
        {error, _} = Error ->
            Error
    end.

ticktime_args() ->
    case net_kernel:get_net_ticktime() of
        T when is_integer(T) -> ["--net-ticktime", integer_to_list(T)];
        _ -> []
    end.

%% @doc Starts the port program and waits (up to the config's start
%% timeout) for the line with its name: `{ok, CNode, Prog}' with the
%% program running, or `{error, Reason}' with nothing left running. For the
%% watcher's start, which the application's start waits for.
-spec start(config()) -> {ok, node(), prog()} | {error, term()}.
start(Cfg) ->
    case open_cnode(Cfg) of
        {ok, Port, OsPid} ->
            Deadline = now_ms() + maps:get(start_timeout, Cfg),
            case await_name(Port, Deadline, []) of
                {ok, CNode} ->
                    ?LOG_INFO("reckon_cnode: started C node ~s (os pid ~p)",
                              [CNode, OsPid]),
                    {ok, CNode, #prog{cfg = Cfg, port = Port, os_pid = OsPid,
                                      phase = running}};
                {error, Reason} ->
                    stop_port(Port, OsPid),
                    {error, Reason}
            end;
        {error, Reason} ->
            {error, Reason}
    end.

%% @doc Starts the port program again after it exited, without waiting:
%% its name line comes as a port message (see {@link handle_info/2}), and
%% the caller bounds the wait with the returned start timeout (ms), then
%% {@link stop/1}s it. `{error, Reason}' when it cannot be started.
-spec restart(prog()) -> {ok, pos_integer(), prog()} | {error, term()}.
restart(#prog{cfg = Cfg} = Prog) ->
    case open_cnode(Cfg) of
        {ok, Port, OsPid} ->
            ?LOG_INFO("reckon_cnode: restarted C node (os pid ~p)", [OsPid]),
            {ok, maps:get(start_timeout, Cfg),
             Prog#prog{port = Port, os_pid = OsPid, line_acc = [], phase = starting}};
        {error, Reason} ->
            ?LOG_WARNING("reckon_cnode: cannot restart C node: ~p", [Reason]),
            {error, Reason}
    end.

%% @doc Handles `Msg' if it comes from the current port: its output (log
%% lines to logger; while it starts, the line with its name: `{named,
%% CNode, Prog}') or its exit (`{exited, Status, OsPid, Prog}', with the
%% program `down'). Returns `not_port' for any other message.
-spec handle_info(term(), prog()) ->
          {ok, prog()} | {named, node(), prog()}
              | {exited, integer(), non_neg_integer() | undefined, prog()}
              | not_port.
handle_info({Port, {data, {Eol, Part}}}, #prog{port = Port} = Prog)
  when Port =/= undefined ->
    output(Eol, Part, Prog);
handle_info({Port, {exit_status, Status}}, #prog{port = Port, os_pid = OsPid} = Prog)
  when Port =/= undefined ->
    {exited, Status, OsPid, down(Prog)};
handle_info(_Msg, #prog{}) ->
    not_port.

%% @doc Stops the port program, if one runs: closes its stdin (the C node
%% runs with `--exit-on-stdin-close'), waits up to 2 s for the OS process
%% to go, then sends SIGTERM, and SIGKILL 1 s later. Returns it `down'.
-spec stop(prog()) -> prog().
stop(#prog{port = undefined} = Prog) ->
    down(Prog);
stop(#prog{port = Port, os_pid = OsPid} = Prog) ->
    stop_port(Port, OsPid),
    down(Prog).

%% @doc Whether the port program is down, starting (its name not printed
%% yet) or running.
-spec phase(prog()) -> phase().
phase(#prog{phase = Phase}) ->
    Phase.

%% @doc The port program's OS pid, `undefined' when it is down.
-spec os_pid(prog()) -> non_neg_integer() | undefined.
os_pid(#prog{os_pid = OsPid}) ->
    OsPid.

%%%===================================================================
%%% Internal functions
%%%===================================================================

down(Prog) ->
    Prog#prog{port = undefined, os_pid = undefined, phase = down, line_acc = []}.

open_cnode(#{exe := Exe, args := Args, cookie := Cookie}) ->
    try open_port({spawn_executable, Exe},
                  [{args, Args},
                   {env, [{"RECKON_CNODE_COOKIE", Cookie}]},
                   %% its log lines come here too, and go to logger
                   {line, 1024}, exit_status, use_stdio, stderr_to_stdout]) of
        Port ->
            case erlang:port_info(Port, os_pid) of
                {os_pid, OsPid} -> {ok, Port, OsPid};
                undefined -> {error, port_closed}
            end
    catch
        error:Reason -> {error, {open_port, Reason}}
    end.

%% Synchronous wait for the name line, used by start/1.
await_name(Port, Deadline, Acc) ->
    receive
        {Port, {data, {noeol, Part}}} ->
            await_name(Port, Deadline, Acc ++ Part);
        {Port, {data, {eol, Part}}} ->
            case cnode_log(Acc ++ Part) of
                logged ->
                    await_name(Port, Deadline, []);
                {not_a_log_line, Line} ->
                    case parse_name(Line) of
                        {ok, _} = Named -> Named;
                        {error, _} -> await_exit(Port, Deadline, [Line])
                    end
            end;
        {Port, {exit_status, Status}} ->
            {error, {cnode_exited, Status}}
    after max(0, Deadline - now_ms()) ->
            {error, cnode_start_timeout}
    end.

%% The C node said something other than its name (e.g. a usage error on
%% stderr): collect it until it exits, for the error reason.
await_exit(Port, Deadline, Said) ->
    receive
        {Port, {data, {_, Part}}} ->
            await_exit(Port, Deadline, [Part | Said]);
        {Port, {exit_status, Status}} ->
            {error, {cnode_exited, Status, lists:flatten(lists:join("\n", lists:reverse(Said)))}}
    after max(0, Deadline - now_ms()) ->
            {error, {cnode_start_timeout, lists:reverse(Said)}}
    end.

%% The one line a starting C node prints: alive@host, nothing else.
parse_name(Line) ->
    Name = string:trim(Line),
    case re:run(Name, "^[^@\\s]+@[^@\\s]+$", [unicode]) of
        {match, _} -> {ok, list_to_atom(Name)};
        nomatch -> {error, {bad_name_line, Line}}
    end.

%% The restarted C node's output: its log lines (to logger), and while it
%% starts, the line with its name. line_acc holds a partial line.
output(noeol, Part, #prog{line_acc = Acc} = Prog) ->
    {ok, Prog#prog{line_acc = Acc ++ Part}};
output(eol, Part, #prog{line_acc = Acc} = Prog) ->
    case cnode_log(Acc ++ Part) of
        logged -> {ok, Prog#prog{line_acc = []}};
        {not_a_log_line, Line} -> name_line(Line, Prog#prog{line_acc = []})
    end.

name_line(_Line, #prog{phase = running} = Prog) ->
    {ok, Prog};
name_line(Line, Prog) ->
    case parse_name(Line) of
        {ok, CNode} ->
            {named, CNode, Prog#prog{phase = running}};
        {error, _} ->
            %% not its name: what it says before exiting (the exit is handled
            %% with its status)
            ?LOG_WARNING("reckon_cnode: C node says: ~ts", [Line]),
            {ok, Prog}
    end.

%% A log line of the spawned C node ("<time> <level> [<module>] <text>")
%% goes to logger at its level, so it does not garble a shell's terminal.
cnode_log(Line) ->
    case re:run(Line, "^\\S+Z (error|warning|info|debug) \\[([^]]*)\\] (.*)$",
                [{capture, all_but_first, list}, unicode]) of
        {match, [Level, Module, Text]} ->
            logger:log(list_to_existing_atom(Level), "reckon_cnode C node [~ts] ~ts",
                       [Module, Text], #{domain => [reckon_cnode]}),
            logged;
        nomatch ->
            {not_a_log_line, Line}
    end.

%% Close the port, wait up to STOP_WAIT ms for the OS process to go, then
%% SIGTERM, then SIGKILL.
stop_port(Port, OsPid) ->
    %% the port may already be closed (the C node exited first)
    try erlang:port_close(Port) catch error:badarg -> ok end,
    case OsPid of
        undefined ->
            ok;
        _ ->
            case wait_os_exit(OsPid, now_ms() + ?STOP_WAIT) of
                ok ->
                    ok;
                timeout ->
                    ?LOG_WARNING("reckon_cnode: C node (os pid ~p) still running "
                                 "~p ms after stdin closed; sending SIGTERM",
                                 [OsPid, ?STOP_WAIT]),
                    os_kill("TERM", OsPid),
                    case wait_os_exit(OsPid, now_ms() + ?KILL_WAIT) of
                        ok -> ok;
                        timeout -> os_kill("KILL", OsPid)
                    end
            end
    end.

%% The port is closed, so its exit_status is not delivered any more: poll
%% the OS process instead.
wait_os_exit(OsPid, Deadline) ->
    case os_pid_alive(OsPid) of
        false ->
            ok;
        true ->
            case now_ms() >= Deadline of
                true ->
                    timeout;
                false ->
                    receive after 20 -> ok end,
                    wait_os_exit(OsPid, Deadline)
            end
    end.

os_pid_alive(OsPid) ->
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            %% "pid (comm) S ...": the state follows the last ')'.
            case string:split(Stat, ")", trailing) of
                [_, <<" Z", _/binary>>] -> false;
                [_, <<" X", _/binary>>] -> false;
                _ -> true
            end;
        {error, enoent} ->
            false;
        {error, _} ->
            %% No procfs: ask kill(1).
            os:cmd("kill -0 " ++ integer_to_list(OsPid)
                   ++ " 2>/dev/null && echo alive") =:= "alive\n"
    end.

os_kill(Signal, OsPid) ->
    _ = os:cmd("kill -" ++ Signal ++ " " ++ integer_to_list(OsPid)
               ++ " 2>/dev/null"),
    ok.

env(Key, Default) ->
    application:get_env(reckon_cnode, Key, Default).

now_ms() ->
    erlang:monotonic_time(millisecond).
