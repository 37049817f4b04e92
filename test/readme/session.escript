#!/usr/bin/env escript
%%! -noshell
%% Runs a README Erlang session (the first erlang block that starts with a
%% `$ ' command line after a heading, by default "## Using it from Erlang")
%% as written: its `$ erl ...` command line, with only the node name
%% made unique, and each `N> ` input in turn; every output line the README
%% shows after an input must appear, in order, in what the shell printed for
%% it. Prints "readme: N passed, N failed".
main([Readme, SName]) ->
    main([Readme, SName, "## Using it from Erlang"]);
main([Readme, SName, Heading]) ->
    {ok, Bin} = file:read_file(Readme),
    Lines = string:split(unicode:characters_to_list(Bin), "\n", all),
    {Cmd, Steps} = session(Heading, Lines),
    Erl = string:replace(Cmd, "-sname me ", "-sname " ++ SName ++ " ", all),
    Inputs = [In || {In, _} <- Steps] ++ ["halt()."],
    Out = run(lists:flatten(Erl), Inputs),
    Chunks = chunks(Out),
    Results = [check(N, In, Want, maps:get(N, Chunks, []))
               || {N, {In, Want}} <- lists:zip(lists:seq(1, length(Steps)), Steps)],
    Failed = length([x || false <- Results]),
    io:format("readme: ~b passed, ~b failed~n", [length(Results) - Failed, Failed]),
    halt(case Failed of 0 -> 0; _ -> 1 end);
main(_) ->
    io:format("usage: session.escript README SNAME [HEADING]~n"),
    halt(2).

%% The first erlang block after the heading that starts with "$ ".
session(Heading, Lines) ->
    After = lists:dropwhile(fun(L) -> L =/= Heading end, Lines),
    [_ | Block0] = first_session(After),
    Block = lists:takewhile(fun(L) -> L =/= "```" end, Block0),
    ["$ " ++ Cmd | Rest] = Block,
    {Cmd, steps(Rest)}.

first_session(Lines) ->
    case lists:dropwhile(fun(L) -> L =/= "```erlang" end, Lines) of
        ["```erlang", "$ " ++ _ | _] = Found -> Found;
        [_ | Rest] -> first_session(Rest)
    end.

steps([]) -> [];
steps([L | Rest]) ->
    {match, [In]} = re:run(L, "^[0-9]+> (.*)$", [{capture, all_but_first, list}]),
    {Want, More} = lists:splitwith(fun(X) -> re:run(X, "^[0-9]+> ") =:= nomatch end, Rest),
    [{In, Want} | steps(More)].

run(Cmd, Inputs) ->
    Port = open_port({spawn, Cmd}, [stream, exit_status, stderr_to_stdout, binary]),
    port_command(Port, [[I, "\n"] || I <- Inputs]),
    collect(Port, []).

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [D | Acc]);
        {Port, {exit_status, _}} -> unicode:characters_to_list(lists:reverse(Acc))
    after 60000 ->
            port_close(Port),
            unicode:characters_to_list(lists:reverse(Acc))
    end.

%% Output per prompt number: what follows "(node@host)N> " up to the next.
chunks(Out) ->
    Parts = re:split(Out, "\\([^)]*\\)([0-9]+)> ", [{return, list}]),
    pair(tl(Parts), #{}).

pair([N, Text | Rest], Acc) -> pair(Rest, Acc#{list_to_integer(N) => Text});
pair(_, Acc) -> Acc.

check(N, In, Want, Got) ->
    GotLines = [string:trim(L) || L <- string:split(Got, "\n", all)],
    case in_order([string:trim(W) || W <- Want], GotLines) of
        true ->
            io:format("ok   ~b> ~ts~n", [N, In]),
            true;
        false ->
            io:format("FAIL ~b> ~ts~n  README shows:~n~ts~n  the shell printed:~n~ts~n",
                      [N, In, lists:join("\n", Want), Got]),
            false
    end.

in_order([], _) -> true;
in_order(_, []) -> false;
in_order([W | Ws], [W | Gs]) -> in_order(Ws, Gs);
in_order(Ws, [_ | Gs]) -> in_order(Ws, Gs).
